"""Who is behind a spike: bursts of contacts and the reasons customers come back for.

Drill-down data is about customers, so it goes to Redis and the token-protected HTTP API,
never into metric labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from stream.engine.figures import Figures
from stream.engine.timeline import ALL, CustomerTimeline, Label


class Burst(NamedTuple):
    """``contacts`` contacts from one customer within ``span_ms``, ending at ``at_ms``."""

    customer_id: str
    contacts: int
    span_ms: int
    at_ms: int
    channel: str
    reason: str


def bursts_since(
    customer_id: str, timeline: CustomerTimeline, size: int, span_ms: int, since_ms: int
) -> list[Burst]:
    """Every burst ending at or after ``since_ms``: a contact that is the ``size``-th within
    ``span_ms`` (counting it). Each burst is reported at the contact that crosses the
    threshold, so a burst is found again, identically, whenever it is looked for."""
    found = []
    for index in range(timeline.index_from(since_ms), len(timeline)):
        at_ms, _, channel, reason, _ = timeline.contact(index)
        if index - timeline.index_from(at_ms - span_ms + 1) + 1 == size:
            found.append(Burst(customer_id, size, span_ms, at_ms, channel, reason))
    return found


class ReasonTrend(NamedTuple):
    reason: str
    customers: int
    repeat_customers: int
    repeat_contact_rate: float
    previous_rate: float | None  # None: nobody contacted for it in the previous period


def repeat_reasons(
    current: Mapping[Label, Figures], previous: Mapping[Label, Figures], limit: int
) -> list[ReasonTrend]:
    """Reasons by repeat contact rate now, with the rate of the previous period beside it."""
    trends = []
    for (channel, reason), figures in current.items():
        if channel != ALL or reason == ALL or not figures.customers:
            continue
        before = previous.get((ALL, reason))
        trends.append(
            ReasonTrend(
                reason,
                figures.customers,
                figures.repeat_customers,
                figures.repeat_contact_rate,
                before.repeat_contact_rate if before and before.customers else None,
            )
        )
    trends.sort(key=lambda trend: (-trend.repeat_contact_rate, -trend.customers, trend.reason))
    return trends[:limit]
