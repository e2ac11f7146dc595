"""Durations as people write them in settings and flags: ``90s``, ``5m``, ``24h``, ``7d``."""

from __future__ import annotations

import re

_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d|w)\s*$")


def parse_duration_ms(text: str) -> int:
    """``"7d"`` -> 604800000. Raises ``ValueError`` naming the accepted forms."""
    match = _DURATION.match(text)
    if not match or int(match.group(1)) == 0:
        raise ValueError(
            f"invalid duration {text!r}: expected a positive whole number and a unit "
            "(ms, s, m, h, d, w), e.g. 90s, 5m, 24h, 7d"
        )
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def format_duration(millis: int) -> str:
    """Text ``parse_duration_ms`` reads back as ``millis``, in days at most: 604800000 -> 7d
    (as people write intervals; 1w would be correct too)."""
    units = sorted(((u, size) for u, size in _UNIT_MS.items() if u != "w"), key=lambda i: -i[1])
    for unit, size in units:
        if millis % size == 0:
            return f"{millis // size}{unit}"
    raise AssertionError("every whole number of milliseconds has a unit")
