"""Bounded label values: at most K per dimension, the rest folded into ``other``.

Values are admitted first come, first served, and the admitted set is derived from the
stored timelines on rebuild, so a restarted worker keeps the labels it had. Deployments
that want the same label set on every worker from the first event name their values in
settings (``RCR_CHANNELS`` / ``RCR_REASONS``): those are admitted up front.
"""

from __future__ import annotations

from collections.abc import Iterable

OTHER = "other"


class LabelFolder:
    __slots__ = ("admitted", "limit")

    def __init__(self, limit: int, preset: Iterable[str] = ()) -> None:
        self.limit = limit
        self.admitted: set[str] = set(preset)

    def fold(self, value: str) -> str:
        if value in self.admitted:
            return value
        if len(self.admitted) < self.limit:
            self.admitted.add(value)
            return value
        return OTHER

    def remember(self, value: str) -> None:
        """A value found in restored state keeps its series, even beyond the limit."""
        if value != OTHER:
            self.admitted.add(value)
