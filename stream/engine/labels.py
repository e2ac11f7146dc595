"""Bounded label values: at most K per dimension, the rest folded into ``other``.

Values are admitted first come, first served, and the admitted set is derived from the
stored timelines on rebuild, so a restarted worker keeps the labels it had. Beyond the
limit, which values get their own series depends on arrival order (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from stream.engine.timeline import UNKNOWN as UNKNOWN  # defined beside the stored labels
from stream.engine.timeline import Label, dimension_label

OTHER = "other"


class LabelFolder:
    __slots__ = ("admitted", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        # value -> the one string object every contact with that value shares: a decoded
        # event brings a fresh copy, and millions of copies of "chat" add up.
        self.admitted: dict[str, str] = {}

    def fold(self, value: str) -> str:
        canonical = self.admitted.get(value)
        if canonical is not None:
            return canonical
        if len(self.admitted) < self.limit:
            self.admitted[value] = value
            return value
        return OTHER

    def peek(self, value: str) -> str:
        """What ``fold`` would return, without admitting anything."""
        canonical = self.admitted.get(value)
        if canonical is not None:
            return canonical
        return value if len(self.admitted) < self.limit else OTHER

    def remember(self, value: str) -> str:
        """A value found in restored state keeps its series, even beyond the limit."""
        if value == OTHER:
            return OTHER
        return self.admitted.setdefault(value, value)


class DimensionFolder:
    """A ``LabelFolder`` for one extra dimension, handing out its label tuples: one shared
    ``(mark + name, value)`` object per value, whatever number of contacts carry it."""

    __slots__ = ("labels", "name", "values")

    def __init__(self, name: str, limit: int) -> None:
        self.name = name
        self.values = LabelFolder(limit)
        self.labels: dict[str, Label] = {}

    def fold(self, value: str) -> Label:
        return self._label(self.values.fold(value))

    def peek(self, value: str) -> Label:
        return self._label(self.values.peek(value))

    def remember(self, value: str) -> Label:
        return self._label(self.values.remember(value))

    def _label(self, value: str) -> Label:
        label = self.labels.get(value)
        if label is None:
            label = self.labels[value] = dimension_label(self.name, value)
        return label
