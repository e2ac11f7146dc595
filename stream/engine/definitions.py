"""Named definitions of a repeat: what matches, within what interval, from when.

A definition says which contacts of a customer match each other (``customer``: any two;
``customer_reason``: only contacts about the same reason, so the unit counted is a
customer's issue) and the repeat interval, which is also the look-forward resolution
window. Several definitions run side by side; the *headline* one feeds the contract's
metrics. A definition with ``effective_from`` becomes the headline at that instant, so a
change of definition takes effect at a stated time and the metrics say which one they
show (docs/METRICS.md).

Text form, one entry per definition, comma-separated (``RCR_DEFINITIONS``)::

    name=matching_key/interval[@RFC 3339 instant]
    default=customer/7d, same_issue=customer_reason/7d, v2=customer/3d@2027-01-01T00:00:00Z
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from stream.durations import parse_duration_ms

_NAME = re.compile(r"[a-z_][a-z0-9_]*\Z")
# Joins a customer id and a reason into one unit key; no sane id contains it.
UNIT_SEPARATOR = "\x1f"


class MatchingKey(StrEnum):
    CUSTOMER = "customer"
    CUSTOMER_REASON = "customer_reason"


@dataclass(frozen=True)
class Definition:
    name: str
    matching_key: MatchingKey
    repeat_interval_ms: int
    effective_from_ms: int | None = None

    def unit_of(self, customer_id: str, reason: str) -> str:
        """What a contact is matched on: its customer, or its customer and reason."""
        if self.matching_key is MatchingKey.CUSTOMER:
            return customer_id
        return f"{customer_id}{UNIT_SEPARATOR}{reason}"


def parse_definitions(text: str) -> tuple[Definition, ...]:
    """Parse the text form; raises ``ValueError`` saying what is wrong with which entry."""
    entries = [entry.strip() for entry in text.split(",") if entry.strip()]
    if not entries:
        raise ValueError("at least one definition is needed")
    definitions = tuple(_parse_entry(entry) for entry in entries)
    names = [definition.name for definition in definitions]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise ValueError(f"definition names must be unique: {', '.join(duplicated)}")
    return definitions


def _parse_entry(entry: str) -> Definition:
    name, equals, rest = entry.partition("=")
    name = name.strip()
    if not equals or not _NAME.match(name):
        raise ValueError(f"{entry!r}: expected name=matching_key/interval[@instant]")
    spec, at, instant = rest.partition("@")
    key, slash, interval = spec.partition("/")
    try:
        matching_key = MatchingKey(key.strip())
    except ValueError:
        choices = ", ".join(key.value for key in MatchingKey)
        raise ValueError(f"{entry!r}: matching key must be one of {choices}") from None
    if not slash:
        raise ValueError(f"{entry!r}: the repeat interval is missing (e.g. /7d)")
    try:
        interval_ms = parse_duration_ms(interval.strip())
    except ValueError as error:
        raise ValueError(f"{entry!r}: {error}") from None
    return Definition(name, matching_key, interval_ms, _instant_ms(entry, instant) if at else None)


def _instant_ms(entry: str, instant: str) -> int:
    try:
        moment = datetime.fromisoformat(instant.strip())
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ValueError(f"{entry!r}: the effective time must be RFC 3339 with an offset")
    return int(moment.timestamp() * 1000)


def headline_at(definitions: Sequence[Definition], now_ms: int) -> Definition:
    """The first definition, until a later-stated one takes effect."""
    current = definitions[0]
    for definition in definitions[1:]:
        starts = definition.effective_from_ms
        if (
            starts is not None
            and starts <= now_ms
            and (current.effective_from_ms is None or starts >= current.effective_from_ms)
        ):
            current = definition
    return current
