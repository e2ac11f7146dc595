"""The active customer base: the denominator of the contact rate, per segment.

Records on the compacted ``customer-base`` topic, keyed by segment:
``{"segment": "all", "active_customers": 950, "timestamp": "..."}``.
"""

from __future__ import annotations

import math

import orjson


def decode_customer_base(key: bytes | None, value: bytes | None) -> tuple[str, float] | None:
    if value is None:
        return None
    try:
        document = orjson.loads(value)
        segment = document.get("segment") or (key.decode() if key else None)
        active = document["active_customers"]
    except (orjson.JSONDecodeError, AttributeError, KeyError, UnicodeDecodeError):
        return None
    valid = isinstance(active, int | float) and not isinstance(active, bool)
    if not isinstance(segment, str) or not valid or not math.isfinite(active) or active <= 0:
        return None
    return segment, float(active)
