"""One customer's contacts: the per-customer state that lives in the Faust table.

A timeline is a list of ``(timestamp_ms, contact_id, channel, reason)`` tuples sorted by
``(timestamp, contact_id)``: the contract's order, in which a contact's predecessor is
simply the entry before it. Everything the engine counts is derived from it.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable

import orjson

Contact = tuple[int, str, str, str]
Label = tuple[str, str]  # (channel, reason); "all" in one or both places

ALL = "all"
TOTAL: Label = (ALL, ALL)


def labels_of(channel: str, reason: str) -> tuple[Label, Label, Label]:
    """Every series a contact counts in: all, its channel, its reason (never the cross)."""
    return TOTAL, (channel, ALL), (ALL, reason)


class CustomerTimeline:
    __slots__ = ("contacts",)

    def __init__(self, contacts: Iterable[Contact] = ()) -> None:
        self.contacts: list[Contact] = sorted(contacts)

    def __len__(self) -> int:
        return len(self.contacts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CustomerTimeline) and self.contacts == other.contacts

    def __repr__(self) -> str:
        return f"CustomerTimeline({self.contacts!r})"

    def has(self, contact_id: str) -> bool:
        return any(contact[1] == contact_id for contact in self.contacts)

    def insert(self, contact: Contact) -> int:
        """Insert in order (appending in the common in-order case); return its index."""
        contacts = self.contacts
        if not contacts or contacts[-1] < contact:
            contacts.append(contact)
            return len(contacts) - 1
        insort(contacts, contact)
        return contacts.index(contact)

    def successor_timestamp(self, contact: Contact) -> int | None:
        """Event time of the contact that would follow ``contact``: its repeat status
        can change when ``contact`` is inserted before it."""
        position = bisect_left(self.contacts, contact)
        return self.contacts[position][0] if position < len(self.contacts) else None

    def is_repeat(self, index: int, repeat_interval_ms: int) -> bool:
        if index == 0:
            return False
        return self.contacts[index][0] - self.contacts[index - 1][0] <= repeat_interval_ms

    def tally(
        self, start_ms: int, end_ms: int | None, repeat_interval_ms: int
    ) -> dict[Label, list[int]]:
        """[contacts, repeat_contacts] per label, for contacts in ``[start, end)``.

        ``end_ms=None`` means no end (a rolling window). A contact's predecessor may lie
        before ``start``: it still makes the contact a repeat. ``(ts,)`` sorts before every
        contact at ``ts``, which makes it the bisect key for "from ts on".
        """
        contacts = self.contacts
        first = bisect_left(contacts, (start_ms,))
        stop = len(contacts) if end_ms is None else bisect_left(contacts, (end_ms,))
        previous = contacts[first - 1][0] if first else None
        counts: dict[Label, list[int]] = {}
        for index in range(first, stop):
            timestamp, _, channel, reason = contacts[index]
            repeat = previous is not None and timestamp - previous <= repeat_interval_ms
            for label in labels_of(channel, reason):
                count = counts.get(label)
                if count is None:
                    counts[label] = [1, int(repeat)]
                else:
                    count[0] += 1
                    count[1] += repeat
            previous = timestamp
        return counts

    def prune(self, before_ms: int) -> int:
        """Drop contacts older than ``before_ms``; return how many went."""
        cut = bisect_left(self.contacts, (before_ms,))
        if cut:
            del self.contacts[:cut]
        return cut

    # Serialisation for the changelog: compact JSON arrays, no field names per contact.
    def to_bytes(self) -> bytes:
        return orjson.dumps(self.contacts)

    @classmethod
    def from_bytes(cls, data: bytes) -> CustomerTimeline:
        timeline = cls()
        timeline.contacts = [tuple(contact) for contact in orjson.loads(data)]  # type: ignore[misc]
        return timeline
