"""What a support desk or IVR asks about one customer (contract section 4), from its timeline."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from stream.engine.drilldown import Burst, bursts_since
from stream.engine.periods import Calendar
from stream.engine.timeline import CustomerTimeline, dimension_of

_UTC = Calendar("UTC")


def customer_lookup(
    timeline: CustomerTimeline, now_ms: int, windows: Mapping[str, int], repeat_interval_ms: int
) -> dict[str, str]:
    """The Redis hash fields: counts per rolling window and the last contact.

    Values are strings, as Redis stores them. ``updated_at`` is the writer's to add.
    """
    fields: dict[str, str] = {}
    contacts = timeline.contacts
    for name, length in windows.items():
        first = timeline.index_from(now_ms - length + 1)
        repeats = sum(
            1
            for index in range(max(first, 1), len(contacts))
            if contacts[index][0] - contacts[index - 1][0] <= repeat_interval_ms
        )
        fields[f"contacts_{name}"] = str(len(contacts) - first)
        fields[f"repeat_contacts_{name}"] = str(repeats)
    if timeline:
        last = len(timeline) - 1
        timestamp, _, channel, reason, dimensions = timeline.contacts[last]
        fields["last_contact_at"] = _UTC.to_rfc3339_ms(timestamp)
        fields["last_channel"] = channel
        fields["last_reason"] = reason
        for label in dimensions:  # last_queue, ... for the extra dimensions
            fields[f"last_{dimension_of(label)}"] = label[1]
        fields["is_repeat"] = "1" if timeline.is_repeat(last, repeat_interval_ms) else "0"
    return fields


# Bursts are kept (and so looked for) for a day.
BURSTS_KEPT_MS = 86_400_000


class CustomerView(NamedTuple):
    """Everything Redis shows about one customer: the lookup hash and its recent bursts."""

    fields: dict[str, str]
    bursts: list[Burst]
    contacts: int  # all the customer's retained contacts


def customer_view(
    customer_id: str,
    timeline: CustomerTimeline,
    now_ms: int,
    windows: Mapping[str, int],
    repeat_interval_ms: int,
    burst: tuple[int, int],
) -> CustomerView:
    """``burst`` is (contacts, span_ms): how many contacts within how long make a burst."""
    size, span_ms = burst
    return CustomerView(
        customer_lookup(timeline, now_ms, windows, repeat_interval_ms),
        bursts_since(customer_id, timeline, size, span_ms, now_ms - BURSTS_KEPT_MS),
        len(timeline),
    )
