"""Throughput from (time, count) observations, and the JSON line every scenario prints."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass
class Progress:
    """Counts seen over time; the rate is measured from the first observation with progress
    to the last, so start-up (group join, recovery) is reported apart from throughput."""

    started: float  # when the clock started (monotonic), for the end-to-end figure
    first_t: float | None = None
    first_count: float = 0.0
    last_t: float | None = None
    last_count: float = 0.0

    def observe(self, at: float, count: float) -> None:
        if count <= 0:
            return
        if self.first_t is None:
            self.first_t, self.first_count = at, count
        self.last_t, self.last_count = at, count

    @property
    def seconds(self) -> float:
        """Seconds of steady progress (or since the start when progress came in one step)."""
        if self.first_t is None or self.last_t is None:
            return 0.0
        if self.last_count > self.first_count and self.last_t > self.first_t:
            return self.last_t - self.first_t
        return self.last_t - self.started

    @property
    def rate(self) -> float:
        if self.first_t is None or self.last_t is None:
            return 0.0
        if self.last_count > self.first_count and self.last_t > self.first_t:
            return (self.last_count - self.first_count) / (self.last_t - self.first_t)
        return self.last_count / max(self.last_t - self.started, 1e-9)

    @property
    def since_start(self) -> float:
        return (self.last_t - self.started) if self.last_t is not None else 0.0


def line(
    scenario: str, events: float, seconds: float, rate: float, **figures: Any
) -> dict[str, Any]:
    """One output line: the common fields first, then the scenario's own figures."""
    out: dict[str, Any] = {
        "scenario": scenario,
        "events": int(events),
        "seconds": round(seconds, 3),
        "rate": round(rate, 1),
    }
    out.update({key: _rounded(value) for key, value in figures.items()})
    return out


def ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 4) if denominator > 0 else None


def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile (``share`` in 0..1); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4) if abs(value) < 100 else round(value, 1)
    return value
