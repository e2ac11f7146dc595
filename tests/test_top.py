"""``rcr top``: the pure rendering on sample documents, and the HTTP client on a fake worker."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner
from rich.console import Console
from rich.text import Text

from stream.cli.top import top
from stream.embedded import free_port
from stream.top.client import WorkerClient
from stream.top.model import (
    Drilldown,
    Health,
    History,
    Readiness,
    Snapshot,
    ordered_windows,
    parse_metrics,
    parse_readiness,
)
from stream.top.render import (
    NO_VALUE,
    Dashboard,
    change,
    freshness_text,
    sparkline,
    spike,
)

NOW = 1_795_430_000.0
URL = "http://worker:6066"


def figures(customers: int, repeat_customers: int, contacts: int | None = None) -> dict:
    """One figures entry as /rates writes it (rate null at 0/0)."""
    contacts = customers + repeat_customers if contacts is None else contacts
    return {
        "contacts": contacts,
        "customers": customers,
        "repeat_customers": repeat_customers,
        "repeat_contacts": contacts - customers,
        "repeat_contact_rate": repeat_customers / customers if customers else None,
    }


def window(
    customers: int,
    repeat_customers: int,
    channels: dict[str, tuple[int, int]] | None = None,
    reasons: dict[str, tuple[int, int]] | None = None,
    base: float | None = 20_000.0,
) -> dict:
    entry = figures(customers, repeat_customers)
    entry["contact_rate"] = entry["contacts"] / base if base else None
    entry["by_channel"] = {name: figures(*pair) for name, pair in (channels or {}).items()}
    entry["by_reason"] = {name: figures(*pair) for name, pair in (reasons or {}).items()}
    return entry


def sample_rates() -> dict:
    """A launch-day morning: login repeats spike in the last hour, billing is calm."""
    cluster = {
        "1h": window(
            400,
            120,
            {"chat": (200, 80), "phone": (200, 40)},
            {"login": (100, 60), "billing": (10, 1)},
        ),
        "24h": window(
            4000, 640, {"chat": (2000, 320), "phone": (2000, 320)}, {"login": (800, 120)}
        ),
        "7d": window(20000, 3000),
        "30d": window(50000, 7000),
        "day": window(
            1000,
            200,
            {"chat": (500, 110), "phone": (500, 90)},
            {"login": (300, 90), "billing": (200, 20)},
        ),
        "week": window(9000, 1300),
        "month": window(30000, 4500),
        "previous_day": window(
            3000,
            540,
            {"chat": (1500, 300), "phone": (1500, 240)},
            {"login": (600, 60), "billing": (500, 55)},
        ),
        "previous_week": window(0, 0),
        "previous_month": window(0, 0),
    }
    return {"customer_base": 20_000.0, "cluster": cluster, "worker": cluster}


METRICS = """\
# TYPE rcr_last_event_timestamp_seconds gauge
rcr_last_event_timestamp_seconds 1795429988.0
# TYPE rcr_consumer_lag_records gauge
rcr_consumer_lag_records{partition="0",topic="contacts"} 3.0
rcr_consumer_lag_records{partition="1",topic="contacts"} 4.0
# TYPE rcr_ready gauge
rcr_ready 1.0
# TYPE rcr_events_total counter
rcr_events_total{outcome="accepted",reason=""} 5000.0
rcr_events_total{outcome="rejected",reason="too_late"} 2.0
rcr_events_total{outcome="rejected",reason="invalid_json"} 1.0
rcr_events_total{outcome="rejected",reason="bad_type"} 0.0
"""


def snapshot(**changes: Any) -> Snapshot:
    values: dict[str, Any] = {
        "url": URL,
        "fetched_at": NOW,
        "rates": sample_rates(),
        "health": parse_metrics(METRICS),
        "readiness": Readiness(True, [], "up"),
        "last_success_at": NOW,
    }
    values.update(changes)
    return Snapshot(**values)


def render(view: Snapshot, history: History | None = None, width: int = 120) -> str:
    if history is None:
        history = History()
        history.record(view)
    console = Console(record=True, width=width, color_system="truecolor", file=io.StringIO())
    console.print(Dashboard(view, history, interval=1.0, now=NOW))
    return console.export_text()


def line_of(screen: str, start: str) -> str:
    return next(line for line in screen.splitlines() if line.startswith(start))


# -- pieces ---------------------------------------------------------------------------------


def test_sparkline_scales_between_min_and_max_and_keeps_the_tail():
    assert sparkline([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8], 8) == "▁▂▃▄▅▆▇█"
    assert sparkline([0.9, 0.1, 0.2], 2) == "▁█"  # only the last `width` values
    assert sparkline([0.2, None, 0.4], 3) == "▁ █"  # 0/0 is a blank, not a zero
    assert sparkline([], 5) == ""
    assert sparkline([None, None], 5) == "  "


def test_sparkline_keeps_a_flat_series_flat():
    assert sparkline([0.3] * 4, 4) == "▁▁▁▁"
    assert sparkline([0.0] * 3, 3) == "▁▁▁"
    # 0.300 -> 0.301 is noise: it must not jump to full height
    assert "█" not in sparkline([0.300, 0.301], 2)


def test_change_is_an_arrow_and_points():
    assert change(0.20, 0.18).plain == "▲ +2.0 pts"
    assert change(0.20, 0.18).style == "red"
    assert change(0.10, 0.125).plain == "▼ -2.5 pts"
    assert change(0.10, 0.1002).plain == "= 0.0 pts"
    assert change(None, 0.1).plain == NO_VALUE
    assert change(0.1, None).plain == NO_VALUE


def test_spike_needs_the_ratio_and_enough_customers():
    assert spike(figures(100, 30), figures(1000, 150)).status == "SPIKE"  # 0.30 / 0.15 = 2
    assert spike(figures(100, 20), figures(1000, 150)).status == "ok"  # 1.33
    assert spike(figures(19, 19), figures(1000, 10)).status == "few"
    assert spike(figures(0, 0), figures(1000, 10)).status == "n/a"
    assert spike(figures(40, 10), figures(1000, 0)).status == "SPIKE"  # from zero
    assert spike(figures(40, 0), figures(1000, 0)).status == "ok"
    assert spike(figures(100, 30), figures(1000, 150)).ratio == pytest.approx(2.0)


def test_metrics_give_freshness_lag_and_dead_letters():
    health = parse_metrics(METRICS)
    assert health.last_event_s == 1795429988.0
    assert health.lag_records == 7.0
    assert health.ready is True
    assert health.dead_letters == {"too_late": 2.0, "invalid_json": 1.0, "bad_type": 0.0}
    assert health.dead_letters_total == 3.0
    assert parse_metrics("rcr_last_event_timestamp_seconds 0\n").last_event_s is None


def test_freshness_turns_red_after_five_minutes():
    fresh = freshness_text(Health(last_event_s=NOW - 42), NOW)
    stale = freshness_text(Health(last_event_s=NOW - 301), NOW)
    assert fresh.plain == "freshness 42s ago"
    assert stale.plain == "freshness 5m ago"
    assert _styles(fresh) == {"green"} and _styles(stale) == {"bold red"}
    assert freshness_text(Health(), NOW).plain == "freshness: no event yet"


def _styles(text: Text) -> set[str]:
    return {str(span.style) for span in text.spans}


def test_windows_are_rolling_shortest_first_then_calendar():
    cluster = {name: {} for name in ["day", "30d", "previous_day", "1h", "7d", "24h"]}
    assert ordered_windows(cluster) == ["1h", "24h", "7d", "30d", "day", "previous_day"]


def test_readiness_document_keeps_reasons():
    readiness = parse_readiness({"ready": False, "reasons": ["recovering"], "redis": "down"})
    assert readiness == Readiness(False, ["recovering"], "down")


# -- the whole screen -----------------------------------------------------------------------


def test_screen_shows_every_window_with_rates_counts_and_sparklines():
    history = History()
    for repeat in (80, 100, 120):  # three refreshes, the 1h RCR rising 20% -> 30%
        rates = sample_rates()
        rates["cluster"]["1h"] = window(400, repeat)
        history.record(snapshot(rates=rates))
    screen = render(snapshot(), history)
    for label in ("1h", "24h", "7d", "30d", "day", "week", "month", "prev day", "prev month"):
        assert any(line.startswith(label + " ") for line in screen.splitlines()), label
    one_hour = line_of(screen, "1h ")
    assert "30.00%" in one_hour and "120/400" in one_hour and "2.60%" in one_hour
    assert "▁▅█" in one_hour  # the RCR sparkline of the three refreshes: 20%, 25%, 30%
    assert "16.00%" in line_of(screen, "24h ")
    assert NO_VALUE in line_of(screen, "prev week")  # 0/0 is a dash, not 0%
    assert "customer base 20,000" in screen


def test_screen_shows_spikes_changes_and_ranked_reasons():
    screen = render(snapshot())
    assert "RCR 1h 30.00% vs 24h 16.00% (1.88x): SPIKE" in screen
    chat = line_of(screen, "chat ")  # 1h 40% vs 24h 16%: spike; today 22% vs 20%: +2 pts
    assert "SPIKE" in chat and "▲ +2.0 pts" in chat
    phone = line_of(screen, "phone ")  # 20% vs 16%: ok; today 18% vs 16%
    assert " ok " in phone and "▲ +2.0 pts" in phone
    assert "login" in screen and "▲ +20.0 pts" in screen  # 30% today vs 10% yesterday
    assert "▼ -1.0 pts" in screen  # billing: 10% vs 11%
    assert "few" in screen  # billing has 10 customers in 1h: no verdict
    reasons = screen[screen.index("Top repeat reasons") :]
    assert reasons.index("login") < reasons.index("billing")
    assert "SPIKE: 1h RCR > 1.5x 24h RCR with ≥ 20 customers in 1h" in screen


def test_screen_shows_health():
    screen = render(snapshot())
    assert "● READY" in screen and "redis up" in screen
    assert "freshness 12s ago" in screen
    assert "lag 7 records" in screen
    assert "dead letters 3 (too_late 2, invalid_json 1)" in screen
    not_ready = render(snapshot(readiness=Readiness(False, ["recovering partitions"], "down")))
    assert "● NOT READY: recovering partitions" in not_ready and "redis down" in not_ready


def test_unreachable_worker_is_a_clear_state_not_a_traceback():
    view = Snapshot(URL, NOW, error="Connection refused", last_success_at=NOW - 75)
    screen = render(view)
    assert f"worker unreachable at {URL}, retrying every 1s" in screen
    assert "Connection refused" in screen and "last good refresh 1m ago" in screen
    assert "RCR" not in screen and "Traceback" not in screen
    never = render(Snapshot(URL, NOW, error="timed out"))
    assert "never reached" in never


def test_unreachable_refreshes_leave_no_fake_points_in_history():
    history = History(size=3)
    for _ in range(5):
        history.record(snapshot())
    history.record(Snapshot(URL, NOW, error="down"))
    assert history.series("1h", "repeat_contact_rate") == [0.3, 0.3, 0.3]


def test_top_customers_and_bursts_appear_when_served():
    view = snapshot(
        top=Drilldown(
            rows=[{"customer_id": "c042", "repeat_contacts": 6, "contacts": 7}], window="7d"
        ),
        bursts=Drilldown(
            rows=[
                {
                    "customer_id": "c777",
                    "contacts": 4,
                    "minutes": 30,
                    "at": "2026-11-23T10:28:20.000Z",  # 5 minutes before NOW
                    "channel": "chat",
                    "reason": "login",
                }
            ]
        ),
    )
    screen = render(view)
    assert "Top repeat customers (7d)" in screen
    assert any("c042" in line and "6" in line and "7" in line for line in screen.splitlines())
    assert "Bursts" in screen and "c777" in screen and "30m" in screen and "5m ago" in screen


def test_drilldown_panels_hide_on_404_and_explain_401():
    hidden = render(snapshot())  # Drilldown() = not served
    assert "Top repeat customers" not in hidden and "Bursts" not in hidden
    locked = render(snapshot(top=Drilldown(note="unauthorized: set RCR_API_TOKEN", window="7d")))
    assert "Top repeat customers (7d)" in locked and "unauthorized: set RCR_API_TOKEN" in locked


def test_narrow_terminal_stacks_tables_and_keeps_values():
    screen = render(snapshot(), width=80)
    assert max(len(line) for line in screen.splitlines()) <= 80
    assert "30.00%" in line_of(screen, "1h ")
    assert screen.index("Channels") < screen.index("Top repeat reasons")


# -- client and command, on a fake worker ---------------------------------------------------


class FakeWorker(BaseHTTPRequestHandler):
    """A worker's HTTP API from canned answers; ``seen`` records paths and Authorization."""

    url: ClassVar[str] = ""
    routes: ClassVar[dict[str, tuple[int, bytes]]] = {}
    seen: ClassVar[list[tuple[str, str | None]]] = []

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization")))
        status, body = self.routes.get(self.path.split("?")[0], (404, b'{"error": "nope"}'))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_worker() -> Iterator[type[FakeWorker]]:
    class Handler(FakeWorker):
        routes: ClassVar[dict[str, tuple[int, bytes]]] = {
            "/rates": (200, json.dumps(sample_rates()).encode()),
            "/metrics": (200, METRICS.encode()),
            "/readyz": (503, b'{"ready": false, "reasons": ["broker down"], "redis": "up"}'),
        }
        seen: ClassVar[list[tuple[str, str | None]]] = []

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    Handler.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield Handler
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_client_reads_every_endpoint_and_sends_the_token(fake_worker):
    fake_worker.routes["/top"] = (
        200,
        b'{"window": "7d", "customers": [{"customer_id": "c1", "contacts": 3}]}',
    )
    fake_worker.routes["/bursts"] = (401, b'{"error": "unauthorized"}')
    client = WorkerClient(fake_worker.url, token="s3cret-token", limit=5)
    view = client.fetch()
    assert view.error is None and view.cluster["1h"]["customers"] == 400
    assert view.health is not None and view.health.lag_records == 7.0
    assert view.readiness == Readiness(False, ["broker down"], "up")  # 503 still has a body
    assert view.top == Drilldown(rows=[{"customer_id": "c1", "contacts": 3}], window="7d")
    assert view.bursts.rows is None and "RCR_API_TOKEN" in (view.bursts.note or "")
    assert ("/top?window=7d&limit=5", "Bearer s3cret-token") in fake_worker.seen


def test_client_hides_missing_drilldown_and_reports_unreachable(fake_worker):
    view = WorkerClient(fake_worker.url).fetch()
    assert not view.top.shown and not view.bursts.shown
    assert all(header is None for _, header in fake_worker.seen)
    client = WorkerClient(f"http://127.0.0.1:{free_port()}", timeout=1)
    down = client.fetch()
    assert down.error and down.rates is None and down.last_success_at is None


def test_once_prints_a_frame_or_exits_1_when_unreachable(fake_worker, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    result = CliRunner().invoke(top, ["--url", fake_worker.url, "--once"])
    assert result.exit_code == 0, result.output
    assert "30.00%" in result.output and "NOT READY: broker down" in result.output
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(top, ["--url", url, "--once"])
    assert result.exit_code == 1
    assert f"worker unreachable at {url}" in result.output
    assert "Traceback" not in result.output
