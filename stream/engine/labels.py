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
        # value -> the one string object every contact with that value shares: a decoded
        # event brings a fresh copy, and millions of copies of "chat" add up.
        self.admitted: dict[str, str] = {value: value for value in preset}

    def fold(self, value: str) -> str:
        canonical = self.admitted.get(value)
        if canonical is not None:
            return canonical
        if len(self.admitted) < self.limit:
            self.admitted[value] = value
            return value
        return OTHER

    def remember(self, value: str) -> str:
        """A value found in restored state keeps its series, even beyond the limit."""
        if value == OTHER:
            return OTHER
        return self.admitted.setdefault(value, value)
