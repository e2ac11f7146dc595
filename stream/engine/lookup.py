"""What a support desk or IVR asks about one customer (contract section 4), from its timeline."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import NamedTuple

from stream.engine.definitions import Definition, MatchingKey
from stream.engine.drilldown import Burst, bursts_since
from stream.engine.periods import Calendar
from stream.engine.timeline import CustomerTimeline, dimension_of

_UTC = Calendar("UTC")


def customer_lookup(
    timeline: CustomerTimeline,
    now_ms: int,
    windows: Mapping[str, int],
    repeat_interval_ms: int,
    definitions: Sequence[Definition] = (),
) -> dict[str, str]:
    """The Redis hash fields: counts per rolling window and the last contact; for each
    definition other than by customer at ``repeat_interval_ms``, ``is_repeat_<name>``
    (e.g. whether the last contact repeats one about the same reason).

    Values are strings, as Redis stores them. ``updated_at`` is the writer's to add.
    """
    fields: dict[str, str] = {}
    contacts = timeline.contacts
    count = len(contacts)
    # repeats_from[i]: repeats among contacts[i:] (a repeat's predecessor may lie before i).
    repeats_from = [0] * (count + 1)
    for index in range(count - 1, 0, -1):
        close = contacts[index][0] - contacts[index - 1][0] <= repeat_interval_ms
        repeats_from[index] = repeats_from[index + 1] + close
    for name, length in windows.items():
        first = timeline.index_from(now_ms - length + 1)
        contacts_field, repeats_field = _window_fields(name)
        fields[contacts_field] = str(count - first)
        fields[repeats_field] = str(repeats_from[max(first, 1)] if count else 0)
    if timeline:
        last = len(timeline) - 1
        timestamp, _, channel, reason, dimensions = timeline.contacts[last]
        fields["last_contact_at"] = _UTC.to_rfc3339_ms(timestamp)
        fields["last_channel"] = channel
        fields["last_reason"] = reason
        for label in dimensions:  # last_queue, ... for the extra dimensions
            fields[f"last_{dimension_of(label)}"] = label[1]
        fields["is_repeat"] = "1" if timeline.is_repeat(last, repeat_interval_ms) else "0"
        for definition in definitions:
            if (definition.matching_key, definition.repeat_interval_ms) != (
                MatchingKey.CUSTOMER,
                repeat_interval_ms,
            ):
                repeat = _last_is_repeat(timeline, definition)
                fields[f"is_repeat_{definition.name}"] = "1" if repeat else "0"
    return fields


@lru_cache(maxsize=64)
def _window_fields(window: str) -> tuple[str, str]:
    return f"contacts_{window}", f"repeat_contacts_{window}"


def _last_is_repeat(timeline: CustomerTimeline, definition: Definition) -> bool:
    """Whether the last contact repeats its predecessor under ``definition``."""
    contacts = timeline.contacts
    timestamp, reason = contacts[-1][0], contacts[-1][3]
    for earlier in reversed(contacts[:-1]):
        if definition.matching_key is MatchingKey.CUSTOMER or earlier[3] == reason:
            return timestamp - earlier[0] <= definition.repeat_interval_ms
    return False


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
    definitions: Sequence[Definition] = (),
) -> CustomerView:
    """``burst`` is (contacts, span_ms): how many contacts within how long make a burst."""
    size, span_ms = burst
    return CustomerView(
        customer_lookup(timeline, now_ms, windows, repeat_interval_ms, definitions),
        bursts_since(customer_id, timeline, size, span_ms, now_ms - BURSTS_KEPT_MS),
        len(timeline),
    )
