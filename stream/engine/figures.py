"""The additive figures of a window, per label, and the rates derived from them."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, fields

from stream.engine.timeline import Label, Status


@dataclass(frozen=True, slots=True)
class Figures:
    """Additive across workers: customers are partitioned by key, so sums are exact."""

    contacts: int = 0
    customers: int = 0
    repeat_customers: int = 0
    repeat_contacts: int = 0
    # Look-forward resolution of the window's contacts (docs/METRICS.md): a contact is
    # provisional until the repeat interval after it has passed, then resolved or not.
    resolved_contacts: int = 0
    unresolved_contacts: int = 0
    provisional_contacts: int = 0

    @property
    def repeat_contact_rate(self) -> float:
        """Share of customers with two or more contacts; NaN when no customer (0/0)."""
        return ratio(self.repeat_customers, self.customers)

    @property
    def first_contact_resolution_rate(self) -> float:
        """Share of matured contacts not followed by another within the interval."""
        return ratio(self.resolved_contacts, self.resolved_contacts + self.unresolved_contacts)

    def contact_rate(self, customer_base: float | None) -> float:
        """Contacts per active customer; NaN without a base."""
        return ratio(self.contacts, customer_base) if customer_base else math.nan

    def __add__(self, other: Figures) -> Figures:
        return Figures(*(mine + theirs for mine, theirs in zip(self, other, strict=True)))

    def __iter__(self) -> Iterator[int]:
        return (getattr(self, name) for name in _FIELDS)


_FIELDS = tuple(field.name for field in fields(Figures))


def ratio(numerator: float, denominator: float | None) -> float:
    return numerator / denominator if denominator else math.nan


def json_number(value: float) -> float | None:
    """JSON has no NaN: a ratio of 0/0 becomes null."""
    return None if math.isnan(value) else value


class LabelCounts:
    """One label's counters in one window, in ``Figures`` field order.

    Attributes, not a list: compiled, they are machine integers, so counting a contact
    allocates nothing (a list holds its counts as int objects, a new one per change).
    """

    __slots__ = (
        "contacts",
        "customers",
        "provisional_contacts",
        "repeat_contacts",
        "repeat_customers",
        "resolved_contacts",
        "unresolved_contacts",
    )

    def __init__(
        self,
        contacts: int = 0,
        customers: int = 0,
        repeat_customers: int = 0,
        repeat_contacts: int = 0,
        resolved_contacts: int = 0,
        unresolved_contacts: int = 0,
        provisional_contacts: int = 0,
    ) -> None:
        self.contacts = contacts
        self.customers = customers
        self.repeat_customers = repeat_customers
        self.repeat_contacts = repeat_contacts
        self.resolved_contacts = resolved_contacts
        self.unresolved_contacts = unresolved_contacts
        self.provisional_contacts = provisional_contacts

    def count(self, held: int, repeat: bool, status: int, change: int) -> None:
        """A contact enters (``change`` 1) or leaves (-1) while its customer holds ``held``
        (0, 1, 2+) other contacts under the label here."""
        self.contacts += change
        if held == 0:
            self.customers += change
        elif held == 1:
            self.repeat_customers += change
        if repeat:
            self.repeat_contacts += change
        self.add_status(status, change)

    def add_status(self, status: int, change: int) -> None:
        """``change`` contacts more (fewer) with resolution ``status`` (a ``Status``)."""
        if status == Status.RESOLVED:
            self.resolved_contacts += change
        elif status == Status.UNRESOLVED:
            self.unresolved_contacts += change
        else:
            self.provisional_contacts += change

    def figures(self) -> Figures:
        return Figures(
            self.contacts,
            self.customers,
            self.repeat_customers,
            self.repeat_contacts,
            self.resolved_contacts,
            self.unresolved_contacts,
            self.provisional_contacts,
        )


class WindowFigures:
    """Running figures of one window, per label, updated contact by contact.

    Contacts enter and leave one at a time (``add_contact`` / ``remove_contact``) with
    how many the customer has under the label, capped at two: that is all the customer
    figures depend on, and with the contact's resolution status (``Status``), which moves
    on its own as time passes or a follow-up arrives (``move``). A rebuild sets the
    counters of every label at once (``stream.engine.rebuild``). Counters are mutable
    ``LabelCounts`` because this sits on the per-event path; ``snapshot`` hands out
    immutable ``Figures``.
    """

    __slots__ = ("counters",)

    def __init__(self) -> None:
        self.counters: dict[Label, LabelCounts] = {}

    def _counter(self, label: Label) -> LabelCounts:
        counter = self.counters.get(label)
        if counter is None:
            counter = self.counters[label] = LabelCounts()
        return counter

    def add_contact(self, label: Label, before: int, repeat: bool, status: int) -> None:
        """A contact enters; the customer had ``before`` (0, 1, 2+) under this label."""
        self._counter(label).count(before, repeat, status, 1)

    def enter(
        self,
        labels: tuple[Label, ...],
        latest_two: list[tuple[int, int]],
        start_ms: int,
        repeat: bool,
        status: int,
    ) -> None:
        """``add_contact`` under each label for a window starting at ``start_ms``, the
        customer's count there taken from ``CustomerTimeline.latest_two`` of each label."""
        for index in range(len(labels)):  # indexed: compiled, faster than zip
            latest, second = latest_two[index]
            # The customer's other contacts here: none, one, or two and more.
            held = 0 if latest < start_ms else 1 if second < start_ms else 2
            self._counter(labels[index]).count(held, repeat, status, 1)

    def remove_contact(self, label: Label, after: int, repeat: bool, status: int) -> None:
        """A contact leaves; the customer keeps ``after`` (0, 1, 2+) under this label."""
        self.counters[label].count(after, repeat, status, -1)

    def add_repeat(self, label: Label, sign: int = 1) -> None:
        """A contact already counted became (or, with -1, stopped being) a repeat."""
        self.counters[label].repeat_contacts += sign

    def move(self, label: Label, old: int, new: int) -> None:
        """A counted contact's resolution status changed."""
        counter = self.counters[label]
        counter.add_status(old, -1)
        counter.add_status(new, 1)

    def clear(self) -> None:
        self.counters = {}

    def snapshot(self) -> dict[Label, Figures]:
        return {label: counter.figures() for label, counter in self.counters.items()}
