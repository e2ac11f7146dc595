"""Every window's figures counted from the timelines at once: ``Engine.rebuild`` in numpy.

A worker rebuilds the figures of each partition it takes over. Adding customers' tallies one
at a time cost about 40 us of Python per customer (two minutes for a million). A window's
figures are sums over customers, so they are counted here over every contact at once: the
contacts as columns (customer, time, one label code per series family), customer after
customer in timeline order, where a contact's predecessor is the row before it when both
are the customer's (as ``bulk`` counts periods for ``rcr compute``).

The counts are the ones ``CustomerTimeline.tally`` gives customer by customer: repeats and
resolution judged over the customer's whole timeline, customers and repeat customers per
label from how many of its contacts the window holds under that label.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter
from typing import Any

import numpy as np
import numpy.typing as npt

from stream.engine.figures import LabelCounts
from stream.engine.timeline import FIELDS, CustomerTimeline, Label

Int64Array = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# Tally columns of a contact's status: resolved, unresolved, provisional (Figures 4..6).
_RESOLVED, _UNRESOLVED, _PROVISIONAL = 0, 1, 2
_STATUSES = 3
_KINDS = _STATUSES * 2  # each status, not a repeat or a repeat

_flat_of = attrgetter("flat")


class _Codes(dict[Any, int]):
    """Distinct values numbered in order of first appearance."""

    def __missing__(self, value: Any) -> int:
        code = self[value] = len(self)
        return code


def numbered(values: Iterable[Any], count: int) -> tuple[list[Any], Int64Array]:
    """The distinct ones of ``count`` values, in order of first appearance, and each
    value's index among them."""
    codes = _Codes()
    column = np.fromiter(map(codes.__getitem__, values), np.int64, count)
    return list(codes), column


class TimelineColumns:
    """The contacts of many customers as columns: row after row, customer after customer,
    each customer's contacts in timeline order. ``fields`` are the timelines' ``flat``
    lists end to end: row ``i``'s fields start at ``i * FIELDS``."""

    def __init__(self, customers: Mapping[str, CustomerTimeline]) -> None:
        self.customer_ids = list(customers)
        self.timelines = list(customers.values())
        self._flatten()

    def _flatten(self) -> None:
        self.fields: list[Any] = list(chain.from_iterable(map(_flat_of, self.timelines)))
        lengths = np.fromiter(map(len, self.timelines), np.int64, len(self.timelines))
        self.end_row = np.cumsum(lengths)
        self.first_row = self.end_row - lengths
        self.customer = np.repeat(np.arange(len(lengths)), lengths)
        self.timestamp = np.array(self.fields[0::FIELDS], np.int64)

    @property
    def newest_ms(self) -> int | None:
        return int(self.timestamp.max()) if len(self.timestamp) else None

    def prune(self, before_ms: int) -> list[str]:
        """``CustomerTimeline.prune`` where it drops something; the customers left (or
        found) without contacts."""
        touched = np.unique(self.customer[self.timestamp < before_ms]).tolist()
        for index in touched:
            self.timelines[index].prune(before_ms)
        if touched:
            self._flatten()
        empty = np.flatnonzero(self.first_row == self.end_row).tolist()
        return [self.customer_ids[index] for index in empty]

    def codes(self, field: int) -> tuple[list[Any], Int64Array]:
        """The distinct values of a contact field, and each row's index among them."""
        return numbered(self.fields[field::FIELDS], len(self.timestamp))

    def set_dimensions(
        self, codes: Int64Array, stored: list[tuple[Label, ...]], wanted: list[tuple[Label, ...]]
    ) -> None:
        """Rows whose dimension labels are ``stored[code]`` get ``wanted[code]`` instead
        when that is another tuple, in their timelines too."""
        stale = np.array([w is not s for s, w in zip(stored, wanted, strict=True)], np.bool_)
        if not stale.any():
            return
        self.fields[4::FIELDS] = list(map(wanted.__getitem__, codes.tolist()))
        changed = np.unique(self.customer[stale[codes]])
        bounds = zip(self.first_row[changed].tolist(), self.end_row[changed].tolist(), strict=True)
        for index, (start, stop) in zip(changed.tolist(), bounds, strict=True):
            self.timelines[index].flat = self.fields[start * FIELDS : stop * FIELDS]


def repeats_and_follow_ups(
    customer: Int64Array, timestamp: Int64Array, repeat_interval_ms: int
) -> tuple[BoolArray, BoolArray]:
    """For rows sorted by customer then time: which contacts repeat their predecessor
    within the interval, and which are followed by one within it."""
    close = (customer[1:] == customer[:-1]) & (timestamp[1:] - timestamp[:-1] <= repeat_interval_ms)
    repeat = np.zeros(len(timestamp), np.bool_)
    repeat[1:] = close
    followed = np.zeros(len(timestamp), np.bool_)
    followed[:-1] = close
    return repeat, followed


@dataclass(frozen=True)
class LabelFamily:
    """Series that split the contacts (every contact counts under exactly one of them):
    the total, the channels, the reasons, or the values of one extra dimension."""

    labels: list[Label]
    codes: Int64Array  # each row's index in ``labels``

    @classmethod
    def single(cls, label: Label, rows: int) -> LabelFamily:
        """One series holding every row (the total)."""
        return cls([label], np.zeros(rows, np.int64))


@dataclass(frozen=True)
class _CountedFamily:
    labels: list[Label]
    # Per row: code * 6 + status * 2 + repeat, so that one bincount gives the label's
    # contacts by status and by repeat; and the row's (customer, label) pair.
    kind: Int64Array
    pair: Int64Array
    pair_label: Int64Array  # each pair's label code
    pairs: int


class WindowTally:
    """Figures of any window of event time over the same rows, judged at one ``now``."""

    def __init__(
        self,
        columns: TimelineColumns,
        families: list[LabelFamily],
        repeat_interval_ms: int,
        now_ms: int,
    ) -> None:
        customer = columns.customer
        self.timestamp = timestamp = columns.timestamp
        repeat, followed = repeats_and_follow_ups(customer, timestamp, repeat_interval_ms)
        status = np.where(
            now_ms - timestamp <= repeat_interval_ms,
            _PROVISIONAL,
            np.where(followed, _UNRESOLVED, _RESOLVED),
        )
        kind = status * 2 + repeat
        self.families = [_counted(family, customer, kind) for family in families if family.labels]

    def counters(self, start_ms: int, end_ms: int | None) -> dict[Label, LabelCounts]:
        """``WindowFigures.counters`` of the window ``[start, end)`` (None: no end)."""
        inside = self.timestamp >= start_ms
        if end_ms is not None:
            inside &= self.timestamp < end_ms
        rows = np.flatnonzero(inside)
        counters: dict[Label, LabelCounts] = {}
        if not len(rows):
            return counters
        for counted in self.families:
            labels = counted.labels
            count = len(labels)
            kinds = np.bincount(counted.kind[rows], minlength=count * _KINDS)
            kinds = kinds.reshape(count, _STATUSES, 2)
            statuses = kinds.sum(axis=2)
            # Rows of each (customer, label) in the window: 1+ a customer, 2+ a repeat one.
            per_pair = np.bincount(counted.pair[rows], minlength=counted.pairs)
            columns = (
                statuses.sum(axis=1),
                np.bincount(counted.pair_label[per_pair > 0], minlength=count),
                np.bincount(counted.pair_label[per_pair > 1], minlength=count),
                kinds[:, :, 1].sum(axis=1),
                *statuses.T,
            )
            by_label = zip(*(column.tolist() for column in columns), strict=True)
            for label, figures in zip(labels, by_label, strict=True):
                if figures[0]:  # a label without contacts in the window has no series there
                    counters[label] = LabelCounts(*figures)
        return counters


def _counted(family: LabelFamily, customer: Int64Array, kind: Int64Array) -> _CountedFamily:
    count = len(family.labels)
    pair, pair_key = _distinct(customer * count + family.codes)
    return _CountedFamily(
        family.labels, family.codes * _KINDS + kind, pair, pair_key % count, len(pair_key)
    )


def _distinct(keys: Int64Array) -> tuple[Int64Array, Int64Array]:
    """Each key's index among the distinct keys, and the distinct keys, sorted.

    ``np.unique(keys, return_inverse=True)``, but by a stable sort: keys made of a customer
    and a label come nearly sorted (rows go customer by customer), which it exploits.
    """
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    first = np.ones(len(keys), np.bool_)
    first[1:] = sorted_keys[1:] != sorted_keys[:-1]
    index = np.empty(len(keys), np.int64)
    index[order] = np.cumsum(first) - 1
    return index, sorted_keys[first]
