"""Figures per calendar period over a whole batch of events: the engine of ``rcr compute``.

A batch has no wall clock and sees every event, so neither the lateness nor the clock-skew
limit applies; duplicates (same customer and contact_id) count once, the first one wins.
The counting itself is the live engine's: ``CustomerTimeline.tally`` over each period.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from stream.engine.events import ContactEvent
from stream.engine.figures import Figures
from stream.engine.periods import Calendar, Period, PeriodKind
from stream.engine.timeline import TOTAL, Contact, CustomerTimeline

# Local midnights fall on quarter hours in today's zones; other buckets are just cache misses.
_LOOKUP_BUCKET_MS = 15 * 60_000


@dataclass(frozen=True, slots=True)
class PeriodFigures:
    period: Period
    figures: Figures


class PeriodFinder:
    """``Calendar.period_of`` with a cache: one timezone conversion per quarter hour."""

    def __init__(self, calendar: Calendar, kind: PeriodKind) -> None:
        self.calendar = calendar
        self.kind = kind
        self._cache: dict[int, Period] = {}

    def __call__(self, timestamp_ms: int) -> Period:
        bucket = timestamp_ms // _LOOKUP_BUCKET_MS
        period = self._cache.get(bucket)
        if period is None or not period.contains(timestamp_ms):
            period = self.calendar.period_of(self.kind, timestamp_ms)
            if period.contains(bucket * _LOOKUP_BUCKET_MS):
                self._cache[bucket] = period
        return period


def collect_timelines(events: Iterable[ContactEvent]) -> tuple[dict[str, CustomerTimeline], int]:
    """Inbound contacts grouped by customer; returns the timelines and the duplicate count."""
    contacts: dict[str, list[Contact]] = defaultdict(list)
    seen: set[tuple[str, str]] = set()
    duplicates = 0
    for event in events:
        if not event.inbound:
            continue
        key = (event.customer_id, event.contact_id)
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        contacts[event.customer_id].append(
            (event.timestamp_ms, event.contact_id, event.channel, event.reason, ())
        )
    return {customer: CustomerTimeline(items) for customer, items in contacts.items()}, duplicates


def figures_per_period(
    timelines: Iterable[CustomerTimeline],
    calendar: Calendar,
    kind: PeriodKind,
    repeat_interval_ms: int,
) -> list[PeriodFigures]:
    """One entry per period with at least one contact, oldest first."""
    period_of = PeriodFinder(calendar, kind)
    timelines = list(timelines)
    # A batch has no clock: resolution is judged at the newest contact it holds.
    now_ms = max((timeline.contacts[-1][0] for timeline in timelines if timeline), default=0)
    totals: dict[Period, list[int]] = {}
    for timeline in timelines:
        for period in _periods_touched(timeline, period_of):
            tally = timeline.tally(period.start_ms, period.end_ms, repeat_interval_ms, now_ms)[
                TOTAL
            ]
            total = totals.setdefault(period, [0, 0, 0, 0])
            total[0] += tally[0]
            total[1] += 1
            total[2] += tally[0] >= 2
            total[3] += tally[1]
    return [
        PeriodFigures(period, Figures(*totals[period])) for period in sorted(totals, key=_start)
    ]


def _periods_touched(timeline: CustomerTimeline, period_of: PeriodFinder) -> list[Period]:
    periods: list[Period] = []
    for timestamp, *_ in timeline.contacts:
        if not periods or not periods[-1].contains(timestamp):
            periods.append(period_of(timestamp))
    return periods


def _start(period: Period) -> int:
    return period.start_ms
