"""Denominators beyond the customer base: contacts per order, per active subscriber. No I/O.

Two kinds, each read from a Kafka topic named in ``RCR_DENOMINATORS``:

- ``count``: one record per business event (an order), ``{"timestamp": ..., "count": 1}``.
  ``EventCounts`` keeps how many happened per event-time millisecond and the exact sum
  per window: the contacts engine's rolling windows and calendar periods, with its notion
  of now (max(wall clock, newest event)) and its retention.
- ``snapshot``: the latest value per segment (a compacted topic, like ``customer-base``):
  ``{"segment": "all", "value": 1234, "timestamp": ...}``.

``contacts_per`` divides contacts by either, window by window.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

import orjson

from stream.engine.periods import Calendar, Period, PeriodKind
from stream.engine.validation import parse_timestamp_ms

# The window label of a snapshot denominator: it has one value, not one per window.
LATEST = "latest"
# Snapshot records name their value like this; the customer-base names are accepted too.
SNAPSHOT_VALUE_FIELDS = ("value", "active_customers", "count")


class RecordOutcome(StrEnum):
    """What became of a denominator record (``rcr_denominator_records_total{outcome}``)."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"  # not a JSON object, a bad count or value, no usable time
    TOO_LATE = "too_late"  # older than the retention: it can be in no window
    TOO_FAR_IN_FUTURE = "too_far_in_future"  # beyond the clock skew limit


@dataclass(frozen=True, slots=True)
class CountRecord:
    timestamp_ms: int
    count: int


def decode_count_record(value: bytes | None, record_timestamp_ms: int | None) -> CountRecord | None:
    """A record of a count topic, or None when it cannot be counted.

    The event time is the ``timestamp`` field when it parses (the contacts' formats),
    otherwise the Kafka record's timestamp; ``count`` is optional (default 1).
    """
    if value is None:
        return None
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(document, dict):
        return None
    count = document.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        return None
    timestamp = _timestamp_ms(document.get("timestamp"))
    if timestamp is None:
        if record_timestamp_ms is None or record_timestamp_ms < 0:
            return None
        timestamp = record_timestamp_ms
    return CountRecord(timestamp, count)


def _timestamp_ms(value: Any) -> int | None:
    if value is None:
        return None
    try:
        return parse_timestamp_ms(value)
    # validation raises its own private exception type; any failure means "no valid time".
    except Exception:
        return None


def decode_snapshot(key: bytes | None, value: bytes | None) -> tuple[str, float] | None:
    """A record of a snapshot topic: (segment, value), or None when it has none."""
    if value is None:
        return None
    try:
        document = orjson.loads(value)
        segment = document.get("segment") or (key.decode() if key else None)
    except (orjson.JSONDecodeError, AttributeError, UnicodeDecodeError):
        return None
    number = next((document[f] for f in SNAPSHOT_VALUE_FIELDS if f in document), None)
    if not isinstance(segment, str) or isinstance(number, bool):
        return None
    if not isinstance(number, int | float) or not math.isfinite(number) or number < 0:
        return None
    return segment, float(number)


@dataclass(slots=True)
class _Window:
    """``[start_ms, end_ms)`` of event time (``end_ms=None``: up to now) and its total."""

    name: str
    start_ms: int
    end_ms: int | None
    total: int = 0

    def contains(self, timestamp_ms: int) -> bool:
        return self.start_ms <= timestamp_ms and (self.end_ms is None or timestamp_ms < self.end_ms)


@dataclass
class EventCounts:
    """Events per event-time millisecond over the retention, and exact window totals.

    Totals move incrementally, like the contacts engine's figures: a record adds its count
    to every window it falls in, a rolling window subtracts the milliseconds that leave
    it, and a calendar period that ends becomes the previous one. Records older than the
    retention (the longest rolling window or the previous month) are refused ``too_late``;
    single milliseconds are kept only for the longest rolling window, since calendar
    periods need nothing but their totals.
    """

    windows: Mapping[str, int]
    now_ms: int
    timezone: str = "UTC"
    max_clock_skew_ms: int = 5 * 60_000
    # Events per event-time millisecond. No sorted index: windows move with the clock, so
    # the milliseconds leaving one are found by walking them (or the dict, if smaller).
    counts: dict[int, int] = field(default_factory=dict, init=False)
    newest_event_ms: int | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.calendar = Calendar(self.timezone)
        self._wall_ms = self.now_ms
        self.rolling = {
            name: _Window(name, self.now_ms - length + 1, None)
            for name, length in self.windows.items()
        }
        self.current: dict[PeriodKind, _Window] = {}
        self.previous: dict[PeriodKind, _Window] = {}
        for kind in PeriodKind:
            period = self.calendar.period_of(kind, self.now_ms)
            self.current[kind] = _period_window(kind.value, period)
            self.previous[kind] = _period_window(
                f"previous_{kind.value}", self.calendar.previous(period)
            )
        # Only rolling windows need single milliseconds, and they only move forward.
        self._forgotten_before_ms = self.oldest_rolling_ms

    @property
    def retention_start_ms(self) -> int:
        """Oldest event time still in a window: the contacts engine's retention."""
        return min(self.oldest_rolling_ms, self.previous[PeriodKind.MONTH].start_ms)

    @property
    def oldest_rolling_ms(self) -> int:
        """Start of the longest rolling window: older milliseconds are not kept."""
        return self.now_ms - max(self.windows.values()) + 1

    def all_windows(self) -> Iterator[_Window]:
        """Rolling, to date, previous: the contacts engine's order and names."""
        yield from self.rolling.values()
        yield from self.current.values()
        yield from self.previous.values()

    def totals(self) -> dict[str, int]:
        return {window.name: window.total for window in self.all_windows()}

    # -- events -----------------------------------------------------------------------

    def add(self, record: CountRecord) -> RecordOutcome:
        timestamp = record.timestamp_ms
        if timestamp > self._wall_ms + self.max_clock_skew_ms:
            return RecordOutcome.TOO_FAR_IN_FUTURE
        self._move_now(timestamp)
        if timestamp < self.retention_start_ms:
            return RecordOutcome.TOO_LATE
        if timestamp >= self.oldest_rolling_ms:  # else only calendar periods hold it
            self.counts[timestamp] = self.counts.get(timestamp, 0) + record.count
        for window in self.all_windows():
            if window.contains(timestamp):
                window.total += record.count
        if self.newest_event_ms is None or timestamp > self.newest_event_ms:
            self.newest_event_ms = timestamp
        return RecordOutcome.ACCEPTED

    # -- time -------------------------------------------------------------------------

    def advance(self, wall_ms: int) -> None:
        """Move the wall clock: windows move on even when no record arrives."""
        self._wall_ms = max(self._wall_ms, wall_ms)
        self._move_now(wall_ms)

    def _move_now(self, target_ms: int) -> None:
        if target_ms <= self.now_ms:
            return
        self.now_ms = target_ms
        for name, window in self.rolling.items():
            new_start = target_ms - self.windows[name] + 1
            window.total -= self._sum_between(window.start_ms, new_start)
            window.start_ms = new_start
        for kind in PeriodKind:
            self._roll_period(kind)
        self._forget_before(self.oldest_rolling_ms)

    def _roll_period(self, kind: PeriodKind) -> None:
        current = self.current[kind]
        if current.end_ms is None or self.now_ms < current.end_ms:
            return
        period = self.calendar.period_of(kind, self.now_ms)
        previous = self.calendar.previous(period)
        if previous.start_ms == current.start_ms:
            current.name = f"previous_{kind.value}"
            self.previous[kind] = current  # final: no accepted event is newer than now
        else:  # now jumped over whole periods: none of them holds an event
            self.previous[kind] = _period_window(f"previous_{kind.value}", previous)
        self.current[kind] = _period_window(kind.value, period)  # nothing newer than now

    def _sum_between(self, start_ms: int, end_ms: int) -> int:
        """Events in ``[start_ms, end_ms)``."""
        counts = self.counts
        if end_ms - start_ms <= len(counts):
            return sum(counts.get(t, 0) for t in range(start_ms, end_ms))
        return sum(n for t, n in counts.items() if start_ms <= t < end_ms)

    def _forget_before(self, horizon_ms: int) -> None:
        start_ms = self._forgotten_before_ms
        if horizon_ms <= start_ms:
            return
        self._forgotten_before_ms = horizon_ms
        counts = self.counts
        if horizon_ms - start_ms <= len(counts):
            for timestamp in range(start_ms, horizon_ms):
                counts.pop(timestamp, None)
        else:
            for timestamp in [t for t in counts if t < horizon_ms]:
                del counts[timestamp]


def _period_window(name: str, period: Period) -> _Window:
    return _Window(name, period.start_ms, period.end_ms)


# -- what the outputs show ---------------------------------------------------------------


@dataclass(frozen=True)
class DenominatorValues:
    """One denominator as the metrics and /rates show it.

    ``values``: the count per window (``count``) or ``{"latest": value}`` (``snapshot``);
    empty until the topic has been read up to where it ended when the worker started.
    """

    kind: Literal["count", "snapshot"]
    values: Mapping[str, float]

    def of_window(self, window: str) -> float | None:
        if self.kind == "snapshot":
            return self.values.get(LATEST)
        return self.values.get(window)


def contacts_per(denominator: DenominatorValues, contacts: Mapping[str, int]) -> dict[str, float]:
    """Contacts / denominator for each window of ``contacts``; NaN when 0 or missing."""
    result = {}
    for window, count in contacts.items():
        value = denominator.of_window(window)
        result[window] = count / value if value else math.nan
    return result


def counts_per_period(
    records: Iterable[CountRecord], calendar: Calendar, kind: PeriodKind
) -> dict[str, int]:
    """Events per calendar period label (``rcr compute``): a batch has no clock, no limit."""
    totals: dict[str, int] = {}
    period: Period | None = None
    for record in records:
        if period is None or not period.contains(record.timestamp_ms):
            period = calendar.period_of(kind, record.timestamp_ms)
        totals[period.label] = totals.get(period.label, 0) + record.count
    return totals
