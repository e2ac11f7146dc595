"""Denominators: window counts against a brute-force count, record decoding, the ratios."""

from __future__ import annotations

import math
from dataclasses import dataclass

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.engine import Engine, EngineConfig
from stream.engine.denominators import (
    LATEST,
    CountRecord,
    DenominatorValues,
    EventCounts,
    RecordOutcome,
    contacts_per,
    counts_per_period,
    decode_count_record,
    decode_snapshot,
)
from stream.engine.periods import Calendar, PeriodKind

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
# 2024-02-25T00:00Z: the runs cross a leap day, month ends and Europe's DST change.
BASE_MS = 1_708_819_200_000
WINDOWS = {"1h": HOUR_MS, "24h": DAY_MS, "7d": 7 * DAY_MS}
SKEW_MS = 5 * MINUTE_MS


@dataclass(frozen=True)
class Order:
    offset_ms: int  # relative to the wall clock at arrival
    count: int


@dataclass(frozen=True)
class Advance:
    by_ms: int


operations = st.lists(
    st.one_of(
        st.builds(
            Order,
            offset_ms=st.one_of(
                st.integers(-45 * DAY_MS, 10 * MINUTE_MS),
                st.sampled_from([0, -1, -HOUR_MS, -HOUR_MS + 1, -DAY_MS, SKEW_MS, SKEW_MS + 1]),
            ),
            count=st.integers(0, 5),
        ),
        st.builds(
            Advance,
            by_ms=st.one_of(st.integers(0, 3 * DAY_MS), st.sampled_from([1, HOUR_MS, 40 * DAY_MS])),
        ),
    ),
    max_size=60,
)


def brute_force_windows(
    calendar: Calendar, now_ms: int, windows: dict[str, int]
) -> dict[str, tuple[int, int]]:
    """Every window as ``[start, end)``, from the definitions alone."""
    bounds = {name: (now_ms - length + 1, now_ms + 1) for name, length in windows.items()}
    for kind in PeriodKind:
        period = calendar.period_of(kind, now_ms)
        previous = calendar.previous(period)
        bounds[kind.value] = (period.start_ms, now_ms + 1)
        bounds[f"previous_{kind.value}"] = (previous.start_ms, previous.end_ms)
    return bounds


@settings(max_examples=300, deadline=None)
@given(operations, st.sampled_from(["UTC", "Europe/Paris", "America/Sao_Paulo"]))
def test_window_totals_equal_a_brute_force_count(ops, zone):
    counts = EventCounts(WINDOWS, BASE_MS, zone, SKEW_MS)
    calendar = Calendar(zone)
    wall = now = BASE_MS
    accepted: list[CountRecord] = []
    for op in ops:
        if isinstance(op, Advance):
            wall += op.by_ms
            now = max(now, wall)
            counts.advance(wall)
            continue
        record = CountRecord(wall + op.offset_ms, op.count)
        outcome = counts.add(record)
        # The outcome, from the definitions: skew against the wall clock, then retention
        # (longest rolling window or previous month) against the new now.
        if record.timestamp_ms > wall + SKEW_MS:
            assert outcome is RecordOutcome.TOO_FAR_IN_FUTURE
            continue
        now = max(now, record.timestamp_ms)
        month = calendar.previous(calendar.period_of(PeriodKind.MONTH, now))
        retention = min(now - max(WINDOWS.values()) + 1, month.start_ms)
        if record.timestamp_ms < retention:
            assert outcome is RecordOutcome.TOO_LATE
            continue
        assert outcome is RecordOutcome.ACCEPTED
        accepted.append(record)
    assert counts.now_ms == now
    # Single milliseconds are held for the longest rolling window only.
    assert all(t >= now - max(WINDOWS.values()) + 1 for t in counts.counts)
    expected = {
        name: sum(r.count for r in accepted if start <= r.timestamp_ms < end)
        for name, (start, end) in brute_force_windows(calendar, now, WINDOWS).items()
    }
    assert counts.totals() == expected


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 5 * DAY_MS), max_size=20), st.sampled_from(["UTC", "Asia/Tokyo"]))
def test_windows_are_the_contacts_engines(steps, zone):
    """Same names and bounds as the engine's windows, whatever the clock does."""
    engine = Engine(EngineConfig(windows=WINDOWS, timezone=zone), now_ms=BASE_MS)
    counts = EventCounts(WINDOWS, BASE_MS, zone)
    wall = BASE_MS
    for step in steps:
        wall += step
        engine.advance(wall)
        counts.advance(wall)
        ours = [(w.name, w.start_ms, w.end_ms) for w in counts.all_windows()]
        theirs = [(w.name, w.start_ms, w.end_ms) for w in engine.windows()]
        assert ours == theirs
        assert counts.retention_start_ms == engine.retention_start_ms


def test_only_the_longest_rolling_window_keeps_milliseconds():
    counts = EventCounts({"1h": HOUR_MS}, BASE_MS)
    for minute in range(200):
        counts.add(CountRecord(BASE_MS - minute * MINUTE_MS, 1))
    assert len(counts.counts) == 60  # older ones count in calendar periods only
    assert counts.totals()["day"] + counts.totals()["previous_day"] == 200
    counts.advance(BASE_MS + 30 * MINUTE_MS)
    assert len(counts.counts) == 30
    counts.advance(BASE_MS + 70 * DAY_MS)
    assert counts.counts == {}
    assert set(counts.totals().values()) == {0}


def test_an_example_day():
    """Three orders of which two today (one of them 3 units): day 4, 1h 3."""
    counts = EventCounts({"1h": HOUR_MS}, BASE_MS + 12 * HOUR_MS)
    counts.add(CountRecord(BASE_MS + 11 * HOUR_MS + 30 * MINUTE_MS, 3))
    counts.add(CountRecord(BASE_MS + 2 * HOUR_MS, 1))
    counts.add(CountRecord(BASE_MS - HOUR_MS, 1))
    totals = counts.totals()
    assert (totals["1h"], totals["day"], totals["previous_day"]) == (3, 4, 1)


# -- decoding ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kafka_ms", "expected"),
    [
        (b'{"timestamp": "2024-02-25T00:00:01Z"}', None, CountRecord(BASE_MS + 1000, 1)),
        (b'{"timestamp": 1708819200, "count": 3}', None, CountRecord(BASE_MS, 3)),
        (b'{"timestamp": 1708819200123}', 5, CountRecord(BASE_MS + 123, 1)),
        (b'{"order_id": "o1"}', BASE_MS, CountRecord(BASE_MS, 1)),
        (b'{"timestamp": "yesterday"}', BASE_MS, CountRecord(BASE_MS, 1)),
        (b'{"timestamp": "2024-02-25T00:00:00"}', BASE_MS + 7, CountRecord(BASE_MS + 7, 1)),
        (b'{"timestamp": true}', BASE_MS, CountRecord(BASE_MS, 1)),
        (b'{"order_id": "o1"}', None, None),
        (b'{"order_id": "o1"}', -1, None),
        (b'{"count": -1, "timestamp": 1708819200}', None, None),
        (b'{"count": 1.5, "timestamp": 1708819200}', None, None),
        (b'{"count": true, "timestamp": 1708819200}', None, None),
        (b"[1, 2]", BASE_MS, None),
        (b"not json", BASE_MS, None),
        (None, BASE_MS, None),
    ],
)
def test_count_records(value, kafka_ms, expected):
    assert decode_count_record(value, kafka_ms) == expected


@pytest.mark.parametrize(
    ("key", "document", "expected"),
    [
        (b"all", {"segment": "all", "value": 1234, "timestamp": "x"}, ("all", 1234.0)),
        (b"all", {"active_customers": 950}, ("all", 950.0)),
        (None, {"segment": "pro", "count": 7.5}, ("pro", 7.5)),
        (b"all", {"segment": "all", "value": 0}, ("all", 0.0)),
        (b"all", {"segment": "all"}, None),
        (b"all", {"segment": "all", "value": -3}, None),
        (b"all", {"segment": "all", "value": True}, None),
        (b"all", {"segment": "all", "value": "12"}, None),
        (None, {"value": 12}, None),
        (b"all", [12], None),
    ],
)
def test_snapshot_records(key, document, expected):
    assert decode_snapshot(key, orjson.dumps(document)) == expected


def test_undecodable_snapshots():
    assert decode_snapshot(b"all", b"{") is None
    assert decode_snapshot(b"all", None) is None
    assert decode_snapshot(b"all", b'{"value": NaN}') is None


# -- ratios -----------------------------------------------------------------------------


def test_contacts_per_count_denominator_window_by_window():
    orders = DenominatorValues("count", {"1h": 50, "24h": 0})
    ratios = contacts_per(orders, {"1h": 10, "24h": 7, "7d": 3})
    assert ratios["1h"] == 0.2
    assert math.isnan(ratios["24h"]) and math.isnan(ratios["7d"])


def test_contacts_per_snapshot_divides_every_window_by_the_latest_value():
    subscribers = DenominatorValues("snapshot", {LATEST: 400})
    assert contacts_per(subscribers, {"1h": 10, "month": 200}) == {"1h": 0.025, "month": 0.5}
    unknown = contacts_per(DenominatorValues("snapshot", {}), {"1h": 10})
    assert math.isnan(unknown["1h"])


def test_counts_per_period_against_a_brute_force_count():
    calendar = Calendar("Europe/Paris")
    records = [CountRecord(BASE_MS + n * 7 * HOUR_MS, n % 3) for n in range(200)]
    expected: dict[str, int] = {}
    for record in records:
        label = calendar.period_of(PeriodKind.WEEK, record.timestamp_ms).label
        expected[label] = expected.get(label, 0) + record.count
    assert counts_per_period(records, calendar, PeriodKind.WEEK) == expected
