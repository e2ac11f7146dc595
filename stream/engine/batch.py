"""Figures per calendar period over a whole batch of events: the engine of ``rcr compute``.

A batch has no wall clock and sees every event, so neither the lateness nor the clock-skew
limit applies; duplicates (same customer and contact_id) count once, the first one wins.
The counting itself is the live engine's: ``CustomerTimeline.tally`` over each period.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from stream.engine.engine import contact_identity
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
    """Inbound contacts grouped by customer; returns the timelines and the duplicate count.

    As in the live engine, a contact_id counts once (the first wins) and the legs of a
    contact chain count once, under the first leg by (timestamp, channel, reason).
    """
    counted: dict[tuple[str, str], Contact] = {}
    duplicates = 0
    for event in events:
        if not event.inbound:
            continue
        identity = contact_identity(event)
        key = (event.customer_id, identity)
        contact: Contact = (event.timestamp_ms, identity, event.channel, event.reason, ())
        kept = counted.get(key)
        if kept is None:
            counted[key] = contact
            continue
        duplicates += 1
        if event.chain_id is not None and contact < kept:
            counted[key] = contact
    contacts: dict[str, list[Contact]] = defaultdict(list)
    for (customer, _), kept in counted.items():
        contacts[customer].append(kept)
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
            contacts, repeats, resolved, unresolved, provisional = tally
            total = totals.setdefault(period, [0] * 7)
            total[0] += contacts
            total[1] += 1
            total[2] += contacts >= 2
            total[3] += repeats
            total[4] += resolved
            total[5] += unresolved
            total[6] += provisional
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
