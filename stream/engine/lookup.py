"""What a support desk or IVR asks about one customer (contract section 4), from its timeline."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import NamedTuple

from stream.engine.definitions import Definition, MatchingKey
from stream.engine.drilldown import Burst, bursts_since
from stream.engine.periods import utc_rfc3339_ms
from stream.engine.timeline import CustomerTimeline, Label, dimension_of

# Bursts are kept (and so looked for) for a day.
BURSTS_KEPT_MS = 86_400_000


class CustomerView(NamedTuple):
    """Everything Redis shows about one customer: the lookup hash and its recent bursts."""

    fields: dict[str, str]
    bursts: list[Burst]
    contacts: int  # all the customer's retained contacts
    window_contacts: tuple[int, ...]  # contacts per rolling window, in the windows' order


class Lookups:
    """The lookups of one configuration: the Redis hash fields, and the whole view.

    Built once per configuration: what does not depend on the customer (each window's
    field names, which definitions need an ``is_repeat_<name>`` field of their own) is
    worked out here, not again for every changed customer.
    """

    def __init__(
        self,
        windows: Mapping[str, int],
        repeat_interval_ms: int,
        burst: tuple[int, int],
        definitions: Sequence[Definition] = (),
    ) -> None:
        """``burst`` is (contacts, span_ms): how many contacts within how long make a burst.
        Definitions other than by customer at ``repeat_interval_ms`` each get a field
        saying whether the last contact repeats under them (e.g. about the same reason)."""
        self.windows = tuple(
            (length, f"contacts_{name}", f"repeat_contacts_{name}")
            for name, length in windows.items()
        )
        self.repeat_interval_ms = repeat_interval_ms
        self.definitions = tuple(
            (definition, f"is_repeat_{definition.name}")
            for definition in definitions
            if (definition.matching_key, definition.repeat_interval_ms)
            != (MatchingKey.CUSTOMER, repeat_interval_ms)
        )
        self.burst_size, self.burst_span_ms = burst

    def view(self, customer_id: str, timeline: CustomerTimeline, now_ms: int) -> CustomerView:
        fields, window_contacts = self._fields(timeline, now_ms)
        count = len(timeline)
        bursts = (
            bursts_since(
                customer_id,
                timeline,
                self.burst_size,
                self.burst_span_ms,
                now_ms - BURSTS_KEPT_MS,
            )
            if count >= self.burst_size  # most customers: too few contacts for any burst
            else []
        )
        return CustomerView(fields, bursts, count, window_contacts)

    def _fields(
        self, timeline: CustomerTimeline, now_ms: int
    ) -> tuple[dict[str, str], tuple[int, ...]]:
        """The Redis hash fields (counts per rolling window, the last contact) and the
        contacts per window. Values are strings, as Redis stores them; ``updated_at`` is
        the writer's to add."""
        fields: dict[str, str] = {}
        count = len(timeline)
        interval = self.repeat_interval_ms
        # repeats_from[i]: repeats among contacts[i:] (a repeat's predecessor may lie before
        # i; the first contact is never a repeat, so repeats_from[0] == repeats_from[1]).
        repeats_from = [0] * (count + 1)
        for index in range(count - 1, 0, -1):
            close = timeline.timestamp(index) - timeline.timestamp(index - 1) <= interval
            repeats_from[index] = repeats_from[index + 1] + close
        repeats_from[0] = repeats_from[min(1, count)]
        window_contacts = []
        for length, contacts_field, repeats_field in self.windows:
            first = timeline.index_from(now_ms - length + 1)
            window_contacts.append(count - first)
            fields[contacts_field] = str(count - first)
            fields[repeats_field] = str(repeats_from[first])
        if count:
            timestamp, _, channel, reason, dimensions = timeline.contact(count - 1)
            fields["last_contact_at"] = utc_rfc3339_ms(timestamp)
            fields["last_channel"] = channel
            fields["last_reason"] = reason
            for label in dimensions:  # last_queue, ... for the extra dimensions
                fields[_last_field(label)] = label[1]
            fields["is_repeat"] = "1" if timeline.is_repeat(count - 1, interval) else "0"
            for definition, field in self.definitions:
                fields[field] = "1" if _last_is_repeat(timeline, definition) else "0"
        return fields, tuple(window_contacts)


@lru_cache(maxsize=256)
def _last_field(label: Label) -> str:
    return f"last_{dimension_of(label)}"


def _last_is_repeat(timeline: CustomerTimeline, definition: Definition) -> bool:
    """Whether the last contact repeats its predecessor under ``definition``."""
    last = len(timeline) - 1
    timestamp, reason = timeline.timestamp(last), timeline.contact(last)[3]
    for index in range(last - 1, -1, -1):
        earlier = timeline.contact(index)
        if definition.matching_key is MatchingKey.CUSTOMER or earlier[3] == reason:
            return timestamp - earlier[0] <= definition.repeat_interval_ms
    return False
