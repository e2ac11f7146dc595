"""What ``rcr top`` knows about a worker at one refresh, and the history behind sparklines.

Everything here is plain data parsed from the worker's JSON and Prometheus text, so the
renderer can be fed hand-written samples in tests.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from stream.durations import parse_duration_ms

JSON = dict[str, Any]

# Calendar periods of /rates, in display order after the rolling windows.
CALENDAR_WINDOWS = (
    "day",
    "week",
    "month",
    "previous_day",
    "previous_week",
    "previous_month",
)
HISTORY_SIZE = 60  # refreshes kept per sparkline: about a minute at the default interval


@dataclass(frozen=True)
class Health:
    """The pipeline's health from /metrics: what tells on-call whether figures are current."""

    last_event_s: float | None = None  # newest event time, epoch seconds; None: none yet
    lag_records: float | None = None  # summed over this worker's partitions
    ready: bool | None = None
    dead_letters: dict[str, float] = field(default_factory=dict)  # reason -> rejected count

    @property
    def dead_letters_total(self) -> float:
        return sum(self.dead_letters.values())


@dataclass(frozen=True)
class Readiness:
    """/readyz: a worker can be alive yet not ready (recovering, broker down)."""

    ready: bool
    reasons: list[str]
    redis: str | None


@dataclass(frozen=True)
class Drilldown:
    """An optional endpoint (/top, /bursts): ``rows`` when served, a ``note`` when it failed.

    Both ``None`` means the worker does not serve it (404, older version): the panel hides.
    """

    rows: list[JSON] | None = None
    note: str | None = None
    window: str | None = None

    @property
    def shown(self) -> bool:
        return self.rows is not None or self.note is not None


@dataclass(frozen=True)
class Snapshot:
    """One refresh. ``error`` set means /rates could not be read: the worker is unreachable."""

    url: str
    fetched_at: float
    rates: JSON | None = None
    health: Health | None = None
    readiness: Readiness | None = None
    top: Drilldown = field(default_factory=Drilldown)
    bursts: Drilldown = field(default_factory=Drilldown)
    error: str | None = None
    last_success_at: float | None = None

    @property
    def cluster(self) -> JSON:
        return dict((self.rates or {}).get("cluster") or {})


def parse_metrics(text: str) -> Health:
    """The few samples ``rcr top`` shows, from Prometheus text; absent ones stay ``None``."""
    last_event: float | None = None
    lag: float | None = None
    ready: bool | None = None
    dead: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "rcr_last_event_timestamp_seconds":
                last_event = _positive(sample.value)
            elif sample.name == "rcr_consumer_lag_records":
                lag = (lag or 0.0) + _finite(sample.value)
            elif sample.name == "rcr_ready":
                ready = sample.value >= 1
            elif sample.name == "rcr_events_total" and sample.labels.get("outcome") == "rejected":
                reason = sample.labels.get("reason") or "unknown"
                dead[reason] = dead.get(reason, 0.0) + _finite(sample.value)
    return Health(last_event, lag, ready, dead)


def parse_readiness(document: JSON) -> Readiness:
    """/readyz answers 200 or 503 with the same document; both are worth showing."""
    reasons = [str(reason) for reason in document.get("reasons") or []]
    redis = document.get("redis")
    return Readiness(bool(document.get("ready")), reasons, None if redis is None else str(redis))


def _positive(value: float) -> float | None:
    """A gauge at 0 or NaN means "never set": no event seen yet."""
    return value if math.isfinite(value) and value > 0 else None


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0


def rolling_windows(cluster: JSON) -> list[str]:
    """The rolling windows of /rates, shortest first (they are configurable, not fixed)."""
    names = [name for name in cluster if name not in CALENDAR_WINDOWS]
    return sorted(names, key=_duration_or_max)


def ordered_windows(cluster: JSON) -> list[str]:
    """Rolling windows, then the calendar periods, as the windows table shows them."""
    return rolling_windows(cluster) + [name for name in CALENDAR_WINDOWS if name in cluster]


def _duration_or_max(name: str) -> float:
    try:
        return parse_duration_ms(name)
    except ValueError:
        return math.inf


class History:
    """The last ``size`` values of each window's RCR and contact rate, for sparklines.

    Kept in memory only: ``rcr top`` is a viewer, Prometheus and Grafana keep the real history.
    """

    FIGURES = ("repeat_contact_rate", "contact_rate")

    def __init__(self, size: int = HISTORY_SIZE) -> None:
        self.size = size
        self._series: dict[tuple[str, str], deque[float | None]] = {}

    def record(self, snapshot: Snapshot) -> None:
        """Append this refresh's figures; an unreachable refresh adds nothing (no fake gap)."""
        if snapshot.error is not None:
            return
        for window, entry in snapshot.cluster.items():
            for figure in self.FIGURES:
                value = entry.get(figure) if isinstance(entry, dict) else None
                series = self._series.setdefault((window, figure), deque(maxlen=self.size))
                series.append(float(value) if isinstance(value, int | float) else None)

    def series(self, window: str, figure: str) -> list[float | None]:
        return list(self._series.get((window, figure), ()))
