"""One customer's contacts: the per-customer state that lives in the Faust table.

A timeline holds ``(timestamp_ms, contact_id, channel, reason, dimensions)`` contacts
sorted by ``(timestamp, contact_id)``, laid flat in one list (``CustomerTimeline``): the
contract's order, in which a contact's predecessor is simply the contact before it.
Everything the engine counts is derived from it.
``dimensions`` holds the contact's labels in the extra dimensions of ``RCR_DIMENSIONS``
(queue, ...), each a ``(DIMENSION_MARK + name, value)`` label shared by every contact
with that value; empty without extra dimensions.
"""

from __future__ import annotations

from collections.abc import Iterable
from sys import intern
from typing import Any, Final

import orjson

from stream.engine.stored import decode_stored

Label = tuple[str, str]  # (channel, reason), "all" in one or both; or an extra dimension's
Contact = tuple[int, str, str, str, tuple[Label, ...]]

ALL = "all"
TOTAL: Label = (ALL, ALL)
UNKNOWN = "unknown"  # the value of a label an event does not give
# Starts the first element of an extra dimension's label, (DIMENSION_MARK + name, value):
# no channel value starts so, and the second element of such a label is never "all".
DIMENSION_MARK = "\x1d"
# Before any timestamp: stands for a contact that is not there.
NEVER = -(1 << 62)


def dimension_label(name: str, value: str) -> Label:
    return (DIMENSION_MARK + name, value)


def dimension_of(label: Label) -> str | None:
    """The extra dimension a label belongs to; None for the contract's labels."""
    first = label[0]
    return first[1:] if first[:1] == DIMENSION_MARK else None


class Status:
    """Look-forward resolution of one contact, judged at ``now``.

    A contact is *provisional* until the repeat interval after it has passed (a follow-up
    may still come, or a late one still arrive); then it is *unresolved* when the
    customer's next contact came within the interval, *resolved* otherwise. The values
    are the positions of the matching counters in ``Figures``.
    """

    RESOLVED: Final = 4
    UNRESOLVED: Final = 5
    PROVISIONAL: Final = 6


def labels_of(contact: Contact) -> tuple[Label, ...]:
    """Every series a contact counts in: all, its channel, its reason, its value in each
    extra dimension (never a cross product)."""
    if contact[4]:
        return (TOTAL, (contact[2], ALL), (ALL, contact[3]), *contact[4])
    return TOTAL, (contact[2], ALL), (ALL, contact[3])


# Past this many contacts, duplicate checks use a set of ids instead of a scan.
_ID_SET_FROM: Final = 32
# A contact's fields in ``CustomerTimeline.flat``, in the order of its ``Contact`` tuple.
FIELDS: Final = 5
# Up to this many fields, an insert builds the list anew at its exact size: a list grown
# in place keeps up to half its slots spare, and most timelines hold two or three contacts.
_EXACT_UNTIL: Final = 16 * FIELDS


class CustomerTimeline:
    """The contacts' fields end to end in one list, ``flat``: contact ``i`` is
    ``flat[i * FIELDS : (i + 1) * FIELDS]``, the fields of its ``Contact`` tuple.

    One list slot per field rather than a tuple per contact saves the tuple's header (about
    60 bytes a contact, a third of a tracked customer's memory); ``contact`` gives the
    tuple back when one is needed.
    """

    __slots__ = ("_ids", "flat")

    def __init__(self, contacts: Iterable[Contact] = ()) -> None:
        self.flat: list[Any] = _flattened(sorted(contacts))
        self._ids: set[str] | None = None  # built lazily for long timelines, never stored

    def __len__(self) -> int:
        return len(self.flat) // FIELDS

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CustomerTimeline) and self.flat == other.flat

    def __repr__(self) -> str:
        return f"CustomerTimeline({self.contacts!r})"

    @property
    def contacts(self) -> list[Contact]:
        """Every contact as a tuple, in order: a copy, to read."""
        return [self.contact(index) for index in range(len(self))]

    def contact(self, index: int) -> Contact:
        flat, at = self.flat, index * FIELDS
        return (flat[at], flat[at + 1], flat[at + 2], flat[at + 3], flat[at + 4])

    def timestamp(self, index: int) -> int:
        at: int = self.flat[index * FIELDS]
        return at

    def has(self, contact_id: str) -> bool:
        if len(self.flat) < _ID_SET_FROM * FIELDS:
            return self.find(contact_id) is not None
        if self._ids is None:
            self._ids = set(self.flat[1::FIELDS])
        return contact_id in self._ids

    def find(self, contact_id: str) -> int | None:
        """Index of the contact with this id, if there is one."""
        flat = self.flat
        if len(flat) >= _ID_SET_FROM * FIELDS and not self.has(contact_id):
            return None  # the common answer for a long timeline, without a scan
        for at in range(1, len(flat), FIELDS):
            if flat[at] == contact_id:
                return at // FIELDS
        return None

    def position(self, contact: Contact) -> int:
        """Where ``contact`` belongs in (timestamp, contact_id) order."""
        count = len(self.flat) // FIELDS
        if not count:
            return 0
        latest = self.timestamp(count - 1)
        if latest < contact[0] or (latest == contact[0] and self.contact(count - 1) < contact):
            return count  # the common, in-order case
        low, high = 0, count
        while low < high:
            middle = (low + high) // 2
            if self.contact(middle) < contact:
                low = middle + 1
            else:
                high = middle
        return low

    def insert_at(self, index: int, contact: Contact) -> None:
        flat, at = self.flat, index * FIELDS
        if len(flat) < _EXACT_UNTIL:  # concatenation allocates the exact size
            fields: list[Any] = list(contact)
            self.flat = flat + fields if at == len(flat) else flat[:at] + fields + flat[at:]
        else:
            flat[at:at] = contact
        if self._ids is not None:
            self._ids.add(contact[1])

    def remove_at(self, index: int) -> None:
        at = index * FIELDS
        contact_id = self.flat[at + 1]
        self.flat = self.flat[:at] + self.flat[at + FIELDS :]
        if self._ids is not None:
            self._ids.discard(contact_id)

    def index_from(self, timestamp_ms: int) -> int:
        """Index of the first contact at or after ``timestamp_ms``."""
        flat = self.flat
        low, high = 0, len(flat) // FIELDS
        while low < high:
            middle = (low + high) // 2
            at: int = flat[middle * FIELDS]
            if at < timestamp_ms:
                low = middle + 1
            else:
                high = middle
        return low

    def count_upto_two(self, start: int, stop: int, label: Label) -> int:
        """How many contacts in ``[start, stop)`` count under ``label``: 0, 1, or 2 for more.

        Customers and repeat customers only change at 0 -> 1 and 1 -> 2, so the scan
        stops at the second match.
        """
        if label == TOTAL:
            return min(stop - start, 2)
        found = 0
        flat = self.flat
        if label[0][:1] == DIMENSION_MARK:
            for at in range(start * FIELDS + 4, stop * FIELDS, FIELDS):
                if label in flat[at]:
                    found += 1
                    if found == 2:
                        break
            return found
        field, value = (2, label[0]) if label[1] == ALL else (3, label[1])
        for at in range(start * FIELDS + field, stop * FIELDS, FIELDS):
            if flat[at] == value:
                found += 1
                if found == 2:
                    break
        return found

    def latest_two(self, label: Label, floor_ms: int) -> tuple[int, int]:
        """Timestamps of the last two contacts counting under ``label``, latest first,
        ``NEVER`` for each one missing; contacts before ``floor_ms`` are not looked at."""
        flat = self.flat
        if label == TOTAL:
            count = len(flat) // FIELDS
            latest = self.timestamp(count - 1) if count else NEVER
            second = self.timestamp(count - 2) if count > 1 else NEVER
            return (
                latest if latest >= floor_ms else NEVER,
                second if second >= floor_ms else NEVER,
            )
        found = [NEVER, NEVER]
        matched = 0
        dimension = label[0][:1] == DIMENSION_MARK
        field, value = (2, label[0]) if label[1] == ALL else (3, label[1])
        for at in range(len(flat) - FIELDS, -1, -FIELDS):
            timestamp: int = flat[at]
            if timestamp < floor_ms:
                break
            if (label in flat[at + 4]) if dimension else (flat[at + field] == value):
                found[matched] = timestamp
                matched += 1
                if matched == 2:
                    break
        return found[0], found[1]

    def is_repeat(self, index: int, repeat_interval_ms: int) -> bool:
        if index == 0:
            return False
        return self.timestamp(index) - self.timestamp(index - 1) <= repeat_interval_ms

    def status(self, index: int, now_ms: int, repeat_interval_ms: int) -> int:
        """The ``Status`` of the contact at ``index`` when the clock says ``now_ms``."""
        timestamp = self.timestamp(index)
        if now_ms - timestamp <= repeat_interval_ms:
            return Status.PROVISIONAL
        following = index + 1
        if (
            following < len(self.flat) // FIELDS
            and self.timestamp(following) - timestamp <= repeat_interval_ms
        ):
            return Status.UNRESOLVED
        return Status.RESOLVED

    def tally(
        self, start_ms: int, end_ms: int | None, repeat_interval_ms: int, now_ms: int
    ) -> dict[Label, list[int]]:
        """[contacts, repeat_contacts, resolved, unresolved, provisional] per label, for
        contacts in ``[start, end)``, resolution judged at ``now_ms``.

        ``end_ms=None`` means no end (a rolling window). A contact's predecessor may lie
        before ``start``: it still makes the contact a repeat; likewise its follow-up may
        lie after ``end``.
        """
        first, stop = self.indices(start_ms, end_ms)
        return self.tally_indices(first, stop, repeat_interval_ms, now_ms)

    def indices(self, start_ms: int, end_ms: int | None) -> tuple[int, int]:
        """``[first, stop)``: the index range of the contacts in ``[start, end)``."""
        stop = len(self.flat) // FIELDS if end_ms is None else self.index_from(end_ms)
        return self.index_from(start_ms), stop

    def tally_indices(
        self, first: int, stop: int, repeat_interval_ms: int, now_ms: int
    ) -> dict[Label, list[int]]:
        """``tally`` of the contacts at indices ``[first, stop)``."""
        previous = self.timestamp(first - 1) if first else None
        counts: dict[Label, list[int]] = {}
        for index in range(first, stop):
            contact = self.contact(index)
            timestamp = contact[0]
            repeat = previous is not None and timestamp - previous <= repeat_interval_ms
            # Tally positions 2..4 hold the statuses (Figures positions 4..6).
            status = self.status(index, now_ms, repeat_interval_ms) - 2
            for label in labels_of(contact):
                count = counts.get(label)
                if count is None:
                    count = counts[label] = [0, 0, 0, 0, 0]
                count[0] += 1
                count[1] += repeat
                count[status] += 1
            previous = timestamp
        return counts

    def prune(self, before_ms: int) -> int:
        """Drop contacts older than ``before_ms``; return how many went."""
        cut = self.index_from(before_ms)
        if cut:
            self.flat = self.flat[cut * FIELDS :]
            self._ids = None
        return cut

    # Serialisation for the changelog: compact JSON arrays, no field names per contact;
    # extra dimensions as [name, value] pairs, left out when there are none.
    def to_bytes(self) -> bytes:
        stored: list[list[Any]] = []
        flat = self.flat
        for at in range(0, len(flat), FIELDS):
            contact = flat[at : at + 4]
            dimensions: tuple[Label, ...] = flat[at + 4]
            if dimensions:
                contact.append([[label[0][1:], label[1]] for label in dimensions])
            stored.append(contact)
        return orjson.dumps(stored)

    @classmethod
    def from_bytes(cls, data: bytes) -> CustomerTimeline:
        """A timeline as ``to_bytes`` stored it, its labels as stored (``TimelineReader``)."""
        return _AS_STORED.read(data)

    @classmethod
    def of_flat(cls, flat: list[Any]) -> CustomerTimeline:
        """A timeline of contacts laid out as in ``flat``, in order already: not sorted."""
        timeline = cls()  # empty: nothing to sort
        timeline.flat = flat
        return timeline


def _flattened(contacts: list[Contact]) -> list[Any]:
    """``contacts``' fields end to end, in a list of exactly their number."""
    flat: list[Any] = [None] * (len(contacts) * FIELDS)
    for index, contact in enumerate(contacts):
        flat[index * FIELDS : (index + 1) * FIELDS] = contact
    return flat


class TimelineReader:
    """Reads stored timelines: ``CustomerTimeline.to_bytes``, and the four-field contacts
    without dimensions older versions wrote.

    With ``dimensions``, the stored labels are read for those extra dimensions, as a
    rebuild reads them: one added since reads ``unknown``, one dropped is forgotten (None:
    as stored). Label values and dimension labels come out shared, one object per distinct
    value: a restored table holds millions of contacts and a few dozen distinct labels.
    """

    def __init__(self, dimensions: tuple[str, ...] | None = None) -> None:
        self._labels = _DimensionLabels(dimensions)
        self._absent = self._labels[()]

    def read(self, data: bytes) -> CustomerTimeline:
        labels, absent = self._labels, self._absent
        stored = decode_stored(data)
        flat: list[Any] = [None] * (len(stored) * FIELDS)
        at = 0
        for contact in stored:
            flat[at] = contact.timestamp_ms
            flat[at + 1] = contact.contact_id
            flat[at + 2] = intern(contact.channel)
            flat[at + 3] = intern(contact.reason)
            flat[at + 4] = labels[contact.dimensions] if contact.dimensions else absent
            at += FIELDS
        return CustomerTimeline.of_flat(flat)


class _DimensionLabels(dict[tuple[tuple[str, str], ...], tuple[Label, ...]]):
    """Stored ``[name, value]`` pairs -> their labels for ``names`` (None: as stored)."""

    def __init__(self, names: tuple[str, ...] | None) -> None:
        super().__init__()
        self.names = names

    def __missing__(self, pairs: tuple[tuple[str, str], ...]) -> tuple[Label, ...]:
        if self.names is None:
            labels = tuple(dimension_label(intern(name), intern(value)) for name, value in pairs)
        else:
            values = dict(pairs)
            labels = tuple(
                dimension_label(name, intern(values.get(name, UNKNOWN))) for name in self.names
            )
        self[pairs] = labels
        return labels


_AS_STORED = TimelineReader()
