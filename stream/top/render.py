"""Pure rendering for ``rcr top``: snapshot + history + clock in, rich renderables out.

No I/O and no clock reads here (``Dashboard`` reads the clock only when ``now`` is not given),
so tests render sample documents to a recording console and read the text.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from stream.top.model import (
    HISTORY_SIZE,
    JSON,
    Drilldown,
    Health,
    History,
    Readiness,
    Snapshot,
    ordered_windows,
    rolling_windows,
)

SPARK_BLOCKS = "▁▂▃▄▅▆▇█"
SPARK_MIN_SPAN = 0.1  # of the series' maximum: noise must not fill the whole height
SPIKE_RATIO = 1.5
SPIKE_MIN_CUSTOMERS = 20
STALE_AFTER_S = 300.0
LAG_WARN_RECORDS = 1_000
DIMENSION_ROWS = 10  # per channel / reason table; the rest is counted in the caption
SIDE_BY_SIDE_MIN_WIDTH = 110
CURRENT, PREVIOUS = "day", "previous_day"
NO_VALUE = "\u2013"  # en dash: unknown (0/0, no base), unlike 0%


# -- small pieces ---------------------------------------------------------------------------


def sparkline(values: Sequence[float | None], width: int = HISTORY_SIZE) -> str:
    """The last ``width`` values as ▁..█, scaled between their minimum and maximum.

    The span is at least a tenth of the maximum so that a flat series stays flat instead of
    turning rounding noise into full-height bars; unknown values (0/0) are blanks.
    """
    tail = list(values)[-width:] if width > 0 else []
    known = [value for value in tail if value is not None]
    if not known:
        return " " * len(tail)
    low, high = min(known), max(known)
    span = max(high - low, abs(high) * SPARK_MIN_SPAN)
    top = len(SPARK_BLOCKS) - 1
    return "".join(
        " "
        if value is None
        else SPARK_BLOCKS[0]
        if span == 0
        else SPARK_BLOCKS[min(top, round((value - low) / span * top))]
        for value in tail
    )


def percent(value: Any, digits: int = 2) -> str:
    """Rates as percentages; ``None`` (0/0, or no customer base) as a dash, not 0%."""
    if not isinstance(value, int | float) or not math.isfinite(value):
        return NO_VALUE
    return f"{value * 100:.{digits}f}%"


def rate(entry: JSON | None) -> float | None:
    value = (entry or {}).get("repeat_contact_rate")
    return float(value) if isinstance(value, int | float) else None


def count(entry: JSON | None, key: str) -> int:
    value = (entry or {}).get(key)
    return int(value) if isinstance(value, int | float) else 0


def change(now: float | None, before: float | None) -> Text:
    """The move against the previous period in percentage points; up is bad, so red."""
    if now is None or before is None:
        return Text(NO_VALUE, style="dim")
    points = (now - before) * 100
    if abs(points) < 0.05:
        return Text("= 0.0 pts", style="dim")
    if points > 0:
        return Text(f"▲ +{points:.1f} pts", style="red")
    return Text(f"▼ {points:.1f} pts", style="green")


class Spike(NamedTuple):
    """A short window's RCR against a longer one's: ``status`` is SPIKE, ok, few or n/a."""

    status: str
    ratio: float | None


def spike(short: JSON | None, long: JSON | None) -> Spike:
    """SPIKE when the short window's RCR exceeds ``SPIKE_RATIO`` times the long window's,
    with at least ``SPIKE_MIN_CUSTOMERS`` customers in the short one (fewer is noise)."""
    now, baseline = rate(short), rate(long)
    if now is None:
        return Spike("n/a", None)
    if count(short, "customers") < SPIKE_MIN_CUSTOMERS:
        return Spike("few", None)
    ratio = now / baseline if baseline else (math.inf if now > 0 else None)
    if ratio is not None and ratio > SPIKE_RATIO:
        return Spike("SPIKE", ratio)
    return Spike("ok", ratio)


_SPIKE_STYLES = {"SPIKE": "bold red", "ok": "green", "few": "dim", "n/a": "dim"}


def spike_text(result: Spike) -> Text:
    return Text(result.status, style=_SPIKE_STYLES[result.status])


def ago(seconds: float) -> str:
    """``42s``, ``5m``, ``3h``, ``2d``: how long, at the precision a glance needs."""
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def window_label(name: str) -> str:
    return name.replace("previous_", "prev ")


# -- status line ----------------------------------------------------------------------------


def readiness_text(readiness: Readiness | None, health: Health | None) -> Text:
    """READY / NOT READY with the worker's own reasons, which say what to fix."""
    if readiness is None:
        ready = health.ready if health else None
        if ready is None:
            return Text("readiness unknown", style="yellow")
        return Text("● READY", style="bold green") if ready else Text("● NOT READY", "bold red")
    if readiness.ready:
        text = Text("● READY", style="bold green")
    else:
        text = Text("● NOT READY", style="bold red")
        if readiness.reasons:
            text.append(": " + "; ".join(readiness.reasons), style="red")
    if readiness.redis is not None:
        text.append(
            f"  redis {readiness.redis}", style="green" if readiness.redis == "up" else "red"
        )
    return text


def freshness_text(health: Health | None, now: float) -> Text:
    """Seconds since the newest event: a stalled pipeline shows here first."""
    if health is None:
        return Text("freshness ?", style="yellow")
    if health.last_event_s is None:
        return Text("freshness: no event yet", style="yellow")
    age = max(0.0, now - health.last_event_s)
    style = "bold red" if age > STALE_AFTER_S else "green"
    return Text.assemble("freshness ", (f"{ago(age)} ago", style))


def lag_text(health: Health | None) -> Text:
    if health is None or health.lag_records is None:
        return Text("lag ?", style="dim")
    style = "yellow" if health.lag_records >= LAG_WARN_RECORDS else "green"
    return Text.assemble("lag ", (f"{health.lag_records:,.0f}", style), " records")


def dead_letters_text(health: Health | None) -> Text:
    if health is None:
        return Text("dead letters ?", style="dim")
    total = health.dead_letters_total
    text = Text.assemble("dead letters ", (f"{total:,.0f}", "yellow" if total else "green"))
    worst = sorted(((n, reason) for reason, n in health.dead_letters.items() if n), reverse=True)[
        :3
    ]
    if worst:
        text.append(" (" + ", ".join(f"{reason} {n:,.0f}" for n, reason in worst) + ")")
    return text


def headline_spike(cluster: JSON) -> Text:
    """The whole site's short-vs-long RCR, the first thing to read on a launch day."""
    windows = rolling_windows(cluster)
    if len(windows) < 2:
        return Text("")
    short, long = windows[0], windows[1]
    result = spike(cluster.get(short), cluster.get(long))
    text = Text(f"RCR {short} {percent(rate(cluster.get(short)))} vs {long} ")
    text.append(f"{percent(rate(cluster.get(long)))}")
    if result.ratio is not None:
        text.append(" (from 0)" if math.isinf(result.ratio) else f" ({result.ratio:.2f}x)")
    text.append(": ")
    return text + spike_text(result)


def status_panel(snapshot: Snapshot, now: float, interval: float) -> Panel:
    parts = [
        readiness_text(snapshot.readiness, snapshot.health),
        freshness_text(snapshot.health, now),
        lag_text(snapshot.health),
        dead_letters_text(snapshot.health),
    ]
    first = Text("   ").join(parts)
    base = (snapshot.rates or {}).get("customer_base")
    second = headline_spike(snapshot.cluster)
    second.append(f"   customer base {base:,.0f}" if isinstance(base, int | float) else "")
    title = f"rcr top · {snapshot.url} · {_clock(snapshot.fetched_at)} · every {interval:g}s"
    return Panel(Group(first, second), title=title, title_align="left", box=box.ROUNDED)


def _clock(epoch_s: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch_s))


# -- tables ---------------------------------------------------------------------------------


def windows_table(cluster: JSON, history: History, spark_width: int) -> Table:
    """Every window's RCR and contact rate with their sparklines and the counts behind them."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("window", style="bold", no_wrap=True)
    table.add_column("RCR", justify="right", no_wrap=True)
    table.add_column("RCR trend", no_wrap=True, style="cyan", min_width=spark_width)
    table.add_column("rep/cust", justify="right", no_wrap=True)
    table.add_column("contact rate", justify="right", no_wrap=True)
    table.add_column("trend", no_wrap=True, style="magenta", min_width=spark_width)
    table.add_column("contacts", justify="right", no_wrap=True)
    for window in ordered_windows(cluster):
        entry = cluster.get(window) or {}
        table.add_row(
            window_label(window),
            percent(rate(entry)),
            sparkline(history.series(window, "repeat_contact_rate"), spark_width),
            f"{count(entry, 'repeat_customers'):,}/{count(entry, 'customers'):,}",
            percent(entry.get("contact_rate")),
            sparkline(history.series(window, "contact_rate"), spark_width),
            f"{count(entry, 'contacts'):,}",
        )
    return table


def dimension_rows(cluster: JSON, key: str, ranked: bool) -> list[str]:
    """Labels of a dimension; ``ranked`` puts the highest RCR today first (top repeat reasons),
    labels with too few customers today last so that one unlucky customer is not the top."""
    labels: set[str] = set()
    for window in (*rolling_windows(cluster)[:2], CURRENT, PREVIOUS):
        labels.update((cluster.get(window) or {}).get(key) or {})
    if not ranked:
        return sorted(labels)
    today = (cluster.get(CURRENT) or {}).get(key) or {}

    def order(label: str) -> tuple[bool, float, int, str]:
        entry = today.get(label)
        return (
            count(entry, "customers") < SPIKE_MIN_CUSTOMERS,
            -(rate(entry) or 0.0),
            -count(entry, "customers"),
            label,
        )

    return sorted(labels, key=order)


def dimension_table(cluster: JSON, key: str, title: str, ranked: bool = False) -> Table:
    """Per channel or reason: RCR now, spike status, today against the previous day."""
    rolling = rolling_windows(cluster)
    short, long = [*rolling, None, None][:2]
    table = Table(
        title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False
    )
    table.add_column(key.removeprefix("by_"), no_wrap=True, max_width=14, overflow="ellipsis")
    table.add_column(short or NO_VALUE, justify="right", no_wrap=True)
    table.add_column(long or NO_VALUE, justify="right", no_wrap=True)
    table.add_column("spike", no_wrap=True)
    table.add_column("today", justify="right", no_wrap=True)
    table.add_column("vs prev day", no_wrap=True)
    labels = dimension_rows(cluster, key, ranked)
    for label in labels[:DIMENSION_ROWS]:
        now_entry = _label_entry(cluster, short, key, label)
        long_entry = _label_entry(cluster, long, key, label)
        today = rate(_label_entry(cluster, CURRENT, key, label))
        table.add_row(
            label,
            percent(rate(now_entry), 1),
            percent(rate(long_entry), 1),
            spike_text(spike(now_entry, long_entry)),
            percent(today, 1),
            change(today, rate(_label_entry(cluster, PREVIOUS, key, label))),
        )
    if len(labels) > DIMENSION_ROWS:
        table.caption = f"+{len(labels) - DIMENSION_ROWS} more"
    return table


def _label_entry(cluster: JSON, window: str | None, key: str, label: str) -> JSON | None:
    if window is None:
        return None
    found = ((cluster.get(window) or {}).get(key) or {}).get(label)
    return found if isinstance(found, dict) else None


def top_customers_table(top: Drilldown) -> RenderableType:
    """Who comes back most (from /top): the names to hand to a team lead."""
    title = f"Top repeat customers ({top.window or '?'})"
    if top.rows is None:
        return _note_table(title, top.note)
    has_repeats = any("repeat_contacts" in row for row in top.rows)
    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        min_width=len(title),  # a title wider than the table would wrap
    )
    table.add_column("customer", no_wrap=True, max_width=24, overflow="ellipsis")
    if has_repeats:
        table.add_column("repeats", justify="right")
    table.add_column("contacts", justify="right")
    for row in top.rows:
        cells = [str(row.get("customer_id", "?"))]
        if has_repeats:
            cells.append(str(row.get("repeat_contacts", NO_VALUE)))
        cells.append(str(row.get("contacts", NO_VALUE)))
        table.add_row(*cells)
    if not top.rows:
        table.caption = "none yet"
    return table


def bursts_table(bursts: Drilldown, now: float) -> RenderableType:
    """Customers with many contacts in minutes (from /bursts): often a broken flow."""
    title = "Bursts"
    if bursts.rows is None:
        return _note_table(title, bursts.note)
    table = Table(
        title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False
    )
    table.add_column("customer", no_wrap=True, max_width=20, overflow="ellipsis")
    table.add_column("contacts", justify="right")
    table.add_column("within", justify="right", no_wrap=True)
    table.add_column("when", justify="right", no_wrap=True)
    table.add_column("channel", no_wrap=True, max_width=10, overflow="ellipsis")
    table.add_column("reason", no_wrap=True, max_width=14, overflow="ellipsis")
    for row in bursts.rows:
        table.add_row(
            str(row.get("customer_id", "?")),
            str(row.get("contacts", NO_VALUE)),
            _minutes(row),
            _when(row.get("at", row.get("at_ms")), now),
            str(row.get("channel", NO_VALUE)),
            str(row.get("reason", NO_VALUE)),
        )
    if not bursts.rows:
        table.caption = "none in the last day"
    return table


def _note_table(title: str, note: str | None) -> Table:
    table = Table(title=title, title_justify="left", box=None, show_header=False)
    table.add_row(Text(note or "not available", style="yellow"))
    return table


def _minutes(row: JSON) -> str:
    minutes = row.get("minutes")
    if not isinstance(minutes, int | float) and isinstance(row.get("span_ms"), int | float):
        minutes = row["span_ms"] / 60_000
    return f"{minutes:g}m" if isinstance(minutes, int | float) else NO_VALUE


def _when(value: Any, now: float) -> str:
    """``at`` as "5m ago": RFC 3339 text, or epoch seconds / milliseconds."""
    epoch: float | None = None
    if isinstance(value, int | float):
        epoch = value / 1000 if value > 1e11 else float(value)
    elif isinstance(value, str):
        try:
            epoch = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return value
    return NO_VALUE if epoch is None else f"{ago(now - epoch)} ago"


# -- the whole screen -----------------------------------------------------------------------


def footer(cluster: JSON) -> Text:
    """The rules behind the colours, so nobody has to guess what SPIKE means."""
    rolling = rolling_windows(cluster)
    short, long = (rolling[0], rolling[1]) if len(rolling) >= 2 else ("1h", "24h")
    return Text(
        f"SPIKE: {short} RCR > {SPIKE_RATIO:g}x {long} RCR with ≥ {SPIKE_MIN_CUSTOMERS} "
        f"customers in {short} (few: fewer customers) · vs prev day: today's RCR minus "
        f"yesterday's, in points (▲ red = worse) · freshness red after "
        f"{STALE_AFTER_S / 60:g} min · trends: last {HISTORY_SIZE} refreshes · reasons ranked "
        "by today's RCR · Ctrl-C quits",
        style="dim",
    )


def unreachable_panel(snapshot: Snapshot, now: float, interval: float) -> Panel:
    """A clear state instead of a traceback: where we looked, why it failed, since when."""
    text = Text(f"worker unreachable at {snapshot.url}, retrying every {interval:g}s", "bold red")
    text.append(f"\nlast error: {snapshot.error}", style="red")
    if snapshot.last_success_at is None:
        text.append("\nnever reached since rcr top started", style="yellow")
    else:
        text.append(f"\nlast good refresh {ago(now - snapshot.last_success_at)} ago", "yellow")
    text.append("\ncheck the worker (rcr worker / rcr dev), its port, or --url", style="dim")
    return Panel(text, title="rcr top", title_align="left", border_style="red", box=box.HEAVY)


def side_by_side(renderables: Iterable[RenderableType], width: int) -> RenderableType:
    """Two tables beside each other when the terminal is wide enough, else one below the other."""
    items = list(renderables)
    if len(items) < 2 or width < SIDE_BY_SIDE_MIN_WIDTH:
        return Group(*items)
    grid = Table.grid(expand=True, padding=(0, 2))
    for _ in items:
        grid.add_column(ratio=1)
    grid.add_row(*items)
    return grid


def spark_width(width: int) -> int:
    """What the two sparkline columns get once the figures have their room."""
    return max(3, min(HISTORY_SIZE, (width - 72) // 2))


def build(
    snapshot: Snapshot, history: History, now: float, width: int = 120, interval: float = 1.0
) -> RenderableType:
    """The whole screen for one refresh."""
    if snapshot.error is not None:
        return unreachable_panel(snapshot, now, interval)
    cluster = snapshot.cluster
    parts: list[RenderableType] = [
        status_panel(snapshot, now, interval),
        windows_table(cluster, history, spark_width(width)),
        side_by_side(
            [
                dimension_table(cluster, "by_channel", "Channels"),
                dimension_table(cluster, "by_reason", "Top repeat reasons", ranked=True),
            ],
            width,
        ),
    ]
    drilldown = [
        top_customers_table(snapshot.top) if snapshot.top.shown else None,
        bursts_table(snapshot.bursts, now) if snapshot.bursts.shown else None,
    ]
    shown = [item for item in drilldown if item is not None]
    if shown:
        parts.append(side_by_side(shown, width))
    parts.append(footer(cluster))
    return Group(*_spaced(parts))


def _spaced(parts: list[RenderableType]) -> Iterable[RenderableType]:
    """A blank line between sections: tables without edges otherwise run into each other."""
    for index, part in enumerate(parts):
        if index > 1:
            yield Text("")
        yield part


@dataclass
class Dashboard:
    """A renderable that lays itself out for the terminal's current width at each refresh."""

    snapshot: Snapshot
    history: History
    interval: float = 1.0
    now: float | None = None

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        now = time.time() if self.now is None else self.now
        yield build(self.snapshot, self.history, now, options.max_width, self.interval)
