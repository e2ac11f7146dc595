"""The four additive figures of a window, per label, and the rates derived from them."""

from __future__ import annotations

import math
from dataclasses import dataclass

from stream.engine.timeline import Label


@dataclass(frozen=True, slots=True)
class Figures:
    """Additive across workers: customers are partitioned by key, so sums are exact."""

    contacts: int = 0
    customers: int = 0
    repeat_customers: int = 0
    repeat_contacts: int = 0

    @property
    def repeat_contact_rate(self) -> float:
        """Share of customers with two or more contacts; NaN when no customer (0/0)."""
        return ratio(self.repeat_customers, self.customers)

    def contact_rate(self, customer_base: float | None) -> float:
        """Contacts per active customer; NaN without a base."""
        return ratio(self.contacts, customer_base) if customer_base else math.nan

    def __add__(self, other: Figures) -> Figures:
        return Figures(
            self.contacts + other.contacts,
            self.customers + other.customers,
            self.repeat_customers + other.repeat_customers,
            self.repeat_contacts + other.repeat_contacts,
        )


def ratio(numerator: float, denominator: float | None) -> float:
    return numerator / denominator if denominator else math.nan


class WindowFigures:
    """Running figures of one window, per label, updated by customer tallies.

    Contacts enter and leave one at a time (``add_contact`` / ``remove_contact``) with
    how many the customer has under the label, capped at two: that is all the customer
    figures depend on. ``apply`` adds a whole customer's tally, for rebuilds.
    Counters are mutable lists ``[contacts, customers, repeat_customers, repeat_contacts]``
    because this sits on the per-event path; ``snapshot`` hands out immutable ``Figures``.
    """

    __slots__ = ("counters",)

    def __init__(self) -> None:
        self.counters: dict[Label, list[int]] = {}

    def apply(self, tally: dict[Label, list[int]], sign: int) -> None:
        counters = self.counters
        for label, (contacts, repeats) in tally.items():
            counter = counters.get(label)
            if counter is None:
                counter = counters[label] = [0, 0, 0, 0]
            counter[0] += sign * contacts
            counter[1] += sign
            if contacts >= 2:
                counter[2] += sign
            counter[3] += sign * repeats

    def add_contact(self, label: Label, before: int, repeat: bool) -> None:
        """A contact enters; the customer had ``before`` (0, 1, 2+) under this label."""
        counter = self.counters.get(label)
        if counter is None:
            counter = self.counters[label] = [0, 0, 0, 0]
        counter[0] += 1
        if before == 0:
            counter[1] += 1
        elif before == 1:
            counter[2] += 1
        counter[3] += repeat

    def remove_contact(self, label: Label, after: int, repeat: bool) -> None:
        """A contact leaves; the customer keeps ``after`` (0, 1, 2+) under this label."""
        counter = self.counters[label]
        counter[0] -= 1
        if after == 0:
            counter[1] -= 1
        elif after == 1:
            counter[2] -= 1
        counter[3] -= repeat

    def add_repeat(self, label: Label) -> None:
        """A contact already counted became a repeat (a late predecessor arrived)."""
        self.counters[label][3] += 1

    def clear(self) -> None:
        self.counters = {}

    def snapshot(self) -> dict[Label, Figures]:
        return {label: Figures(*counter) for label, counter in self.counters.items()}
