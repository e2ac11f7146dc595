"""``rcr compute``: the engine offline over JSON Lines files, one figure set per period."""

from __future__ import annotations

import math
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import orjson

from stream.cli.compute_parts import read_input
from stream.durations import parse_duration_ms
from stream.engine import (
    Calendar,
    PeriodFigures,
    PeriodKind,
    Rejection,
)
from stream.engine.bulk import BulkBatch, figures_of
from stream.engine.validation import DEFAULT_MAX_RECORD_BYTES

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

# Past this many, invalid lines are only counted: a broken export must not flood a terminal.
MAX_REPORTED_LINES = 1000


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--period",
    type=click.Choice([kind.value for kind in PeriodKind]),
    default="month",
    show_default=True,
    help="calendar period to group by",
)
@click.option("--tz", "zone", default="UTC", show_default=True, help="IANA time zone")
@click.option(
    "--customer-base",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="active customers: the denominator of the contact rate",
)
@click.option(
    "--repeat-interval",
    default="7d",
    show_default=True,
    help="max gap between a contact and its repeat",
)
@click.option(
    "--format", "output", type=click.Choice(["json", "table"]), default="json", show_default=True
)
def compute(
    files: tuple[str, ...],
    period: str,
    zone: str,
    customer_base: float | None,
    repeat_interval: str,
    output: str,
) -> None:
    """Repeat Contact Rate and Contact Rate per period from JSON Lines FILES."""
    try:
        interval_ms = parse_duration_ms(repeat_interval)
        calendar = Calendar(zone)
    except Exception as exc:
        raise click.BadParameter(str(exc)) from None
    rejections = Rejections()
    batch = BulkBatch(DEFAULT_MAX_RECORD_BYTES)
    columns = _read([Path(f) for f in files], batch, rejections)
    results = figures_of(*columns, calendar, PeriodKind(period), interval_ms)
    rows = [_as_json(result, calendar, customer_base) for result in results]
    if output == "json":
        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        from rich.console import Console

        Console().print(_as_table(rows))
    if rejections.counts:
        counts = rejections.counts
        summary = ", ".join(f"{count} {reason}" for reason, count in counts.most_common())
        click.echo(f"rcr compute: {counts.total()} invalid lines ({summary})", err=True)


class Rejections:
    """Counts invalid lines by reason and prints the first ones with their line numbers."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.console: Console | None = None  # rich is imported only if there is something to say

    def __call__(self, path: Path, number: int, rejection: Rejection) -> None:
        self.counts[rejection.reason.value] += 1
        if self.counts.total() <= MAX_REPORTED_LINES:
            if self.console is None:
                from rich.console import Console

                self.console = Console(stderr=True)
            message = f"{path}:{number}: {rejection.reason.value}: {rejection.detail}"
            self.console.print(message, markup=False, highlight=False, soft_wrap=True)

    def count(self, counts: Counter[str]) -> None:
        """Lines past the reported ones: counted only."""
        self.counts.update(counts)


def _read(paths: list[Path], batch: BulkBatch, rejections: Rejections) -> tuple[Any, Any]:
    """Customer codes and timestamps of every valid inbound contact; a bar on a terminal."""
    if not sys.stderr.isatty():
        return read_input(paths, batch, rejections, _no_progress)
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TimeRemainingColumn

    total = sum(path.stat().st_size for path in paths)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task("reading", total=total)
        rejections.console = progress.console
        return read_input(paths, batch, rejections, lambda done: progress.advance(task, done))


def _no_progress(_: int) -> None:
    """Nobody watches a bar on a pipe or a file."""


def _as_json(result: PeriodFigures, calendar: Calendar, base: float | None) -> dict[str, Any]:
    figures = result.figures
    contact_rate = figures.contact_rate(base)
    return {
        "period": result.period.label,
        "start": calendar.to_rfc3339(result.period.start_ms),
        "end": calendar.to_rfc3339(result.period.end_ms),
        "contacts": figures.contacts,
        "customers": figures.customers,
        "repeat_customers": figures.repeat_customers,
        "repeat_contacts": figures.repeat_contacts,
        "repeat_contact_rate": figures.repeat_contact_rate,
        "contact_rate": None if math.isnan(contact_rate) else contact_rate,
    }


def _as_table(rows: list[dict[str, Any]]) -> Table:
    from rich.table import Table

    table = Table(
        "period",
        "contacts",
        "customers",
        "repeat customers",
        "repeat contacts",
        "repeat contact rate",
        "contact rate",
        title="Repeat Contact Rate",
    )
    for row in rows:
        rate = row["contact_rate"]
        table.add_row(
            row["period"],
            str(row["contacts"]),
            str(row["customers"]),
            str(row["repeat_customers"]),
            str(row["repeat_contacts"]),
            f"{row['repeat_contact_rate']:.2%}",
            "-" if rate is None else f"{rate:.4f}",
        )
    return table
