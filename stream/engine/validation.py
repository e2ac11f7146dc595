"""Raw record bytes to a ``ContactEvent``, or a ``Rejection`` naming the contract's reason.

Validation needs no clock: lateness and clock skew are judged by the engine, which knows
``now``. ``rcr compute`` uses this module alone, so a batch applies neither limit.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

import orjson

from stream.engine.events import ContactEvent, Rejection, RejectReason

DEFAULT_MAX_RECORD_BYTES = 65_536
MAX_FIELD_CHARS = 256
# Numbers at or above this are epoch milliseconds (1e11 s is the year 5138; 1e11 ms is 1973).
EPOCH_MS_THRESHOLD = 1e11
# Year 10000 in ms: anything at or beyond it cannot be written in RFC 3339.
MAX_TIMESTAMP_MS = 253_402_300_800_000
# The label values the metrics reserve for totals and folding; inputs using them become these.
RESERVED_LABEL_VALUES = {"all": "other"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SEPARATORS = re.compile(r"[\s\-]+")


class _Invalid(Exception):
    def __init__(self, reason: RejectReason, detail: str) -> None:
        self.rejection = Rejection(reason, detail)


def decode_contact(
    raw: bytes | str,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    dimensions: tuple[str, ...] = (),
) -> ContactEvent | Rejection:
    """Decode one record. Never raises: every failure is a ``Rejection``.

    ``dimensions`` names the extra label fields to read (``RCR_DIMENSIONS``): each is
    optional and validated like ``channel``.
    """
    if len(raw) > max_record_bytes:
        return Rejection(RejectReason.TOO_LARGE, f"record of {len(raw)} bytes")
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Rejection(RejectReason.INVALID_JSON, str(exc).splitlines()[0])
    if not isinstance(document, dict):
        return Rejection(RejectReason.INVALID_JSON, "not a JSON object")
    try:
        return contact_from_mapping(document, dimensions)
    except _Invalid as invalid:
        return invalid.rejection


def contact_from_mapping(
    document: dict[str, Any], dimensions: tuple[str, ...] = ()
) -> ContactEvent:
    """Validate a decoded JSON object field by field (raises ``_Invalid``), in the order
    of ``ContactEvent``'s fields: the first invalid one is the one reported. (Positional
    arguments: keywords made building the event a tenth of validating it.)"""
    return ContactEvent(
        _identifier(document, "contact_id"),
        _customer_id(document),
        parse_timestamp_ms(_required(document, "timestamp")),
        _label(document, "channel"),
        _label(document, "reason"),
        _is_inbound(document.get("direction")),
        _optional_text(document, "chain_id"),
        _status(document),
        _wait_ms(document),
        tuple([_label(document, name) for name in dimensions]),
    )


def parse_timestamp_ms(value: Any) -> int:
    """RFC 3339 string, or epoch seconds / milliseconds number, to integer ms."""
    if isinstance(value, str):  # first: nearly every producer writes RFC 3339
        millis = _string_ms(value)
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid(RejectReason.BAD_TYPE, f"timestamp is a {type(value).__name__}")
    else:
        millis = _number_ms(value)
    if not 0 <= millis < MAX_TIMESTAMP_MS:
        raise _Invalid(RejectReason.BAD_TIMESTAMP, f"timestamp {value!r} out of range")
    return millis


def _string_ms(text: str) -> int:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _Invalid(RejectReason.BAD_TIMESTAMP, f"not RFC 3339: {text[:40]!r}") from None
    if moment.tzinfo is None:
        raise _Invalid(RejectReason.BAD_TIMESTAMP, f"no UTC offset: {text[:40]!r}")
    # Integer arithmetic on the timedelta: a float timestamp() could round a millisecond.
    since_epoch = moment - _EPOCH
    return (
        since_epoch.days * 86_400 + since_epoch.seconds
    ) * 1000 + since_epoch.microseconds // 1000


def _number_ms(number: int | float) -> int:
    if not math.isfinite(number):
        raise _Invalid(RejectReason.BAD_TIMESTAMP, f"timestamp {number!r}")
    if abs(number) >= EPOCH_MS_THRESHOLD:
        return int(number)
    return int(number * 1000)


def _required(document: dict[str, Any], field: str) -> Any:
    value = document.get(field)
    if value is None:
        raise _Invalid(RejectReason.MISSING_FIELD, field)
    return value


def _identifier(document: dict[str, Any], field: str) -> str:
    value = _required(document, field)
    if not isinstance(value, str):
        raise _Invalid(RejectReason.BAD_TYPE, f"{field} is a {type(value).__name__}")
    value = value.strip()
    if not value:
        raise _Invalid(RejectReason.MISSING_FIELD, f"{field} is blank")
    if len(value) > MAX_FIELD_CHARS:
        raise _Invalid(RejectReason.TOO_LARGE, f"{field} of {len(value)} characters")
    return value


def _customer_id(document: dict[str, Any]) -> str:
    """A customer id, or ``""`` for a contact the producer says has none.

    An explicit ``null`` or a blank string is such a statement: the contact is valid and ends
    ``anonymous`` (stream.engine.exclusions). A record without the field at all more likely
    comes from a broken producer (a renamed field): it stays ``missing_field``, dead-lettered
    where it can be fixed and replayed.
    """
    if "customer_id" not in document:
        raise _Invalid(RejectReason.MISSING_FIELD, "customer_id")
    value = document["customer_id"]
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _Invalid(RejectReason.BAD_TYPE, f"customer_id is a {type(value).__name__}")
    value = value.strip()
    if len(value) > MAX_FIELD_CHARS:
        raise _Invalid(RejectReason.TOO_LARGE, f"customer_id of {len(value)} characters")
    return value


def _optional_text(document: dict[str, Any], field: str) -> str | None:
    """An optional string field; absent, null or blank are all ``None``."""
    value = document.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Invalid(RejectReason.BAD_TYPE, f"{field} is a {type(value).__name__}")
    value = value.strip()
    if len(value) > MAX_FIELD_CHARS:
        raise _Invalid(RejectReason.TOO_LARGE, f"{field} of {len(value)} characters")
    return value or None


def _status(document: dict[str, Any]) -> str | None:
    """``"Short Abandoned"``, ``"short-abandoned"`` -> ``"short_abandoned"``: suites differ."""
    status = _optional_text(document, "status")
    return None if status is None else _SEPARATORS.sub("_", status.casefold())


def _wait_ms(document: dict[str, Any]) -> int | None:
    """``wait_time``: seconds the customer waited (in queue) before the status, if known."""
    value = document.get("wait_time")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid(RejectReason.BAD_TYPE, f"wait_time is a {type(value).__name__}")
    if not (math.isfinite(value) and value >= 0):
        raise _Invalid(RejectReason.BAD_TYPE, f"wait_time {value!r} is not a duration in seconds")
    return round(value * 1000)


def _label(document: dict[str, Any], field: str) -> str:
    value = document.get(field)
    if value is None:
        return "unknown"
    if not isinstance(value, str):
        raise _Invalid(RejectReason.BAD_TYPE, f"{field} is a {type(value).__name__}")
    if len(value) > MAX_FIELD_CHARS:
        raise _Invalid(RejectReason.TOO_LARGE, f"{field} of {len(value)} characters")
    value = value.strip() or "unknown"
    return RESERVED_LABEL_VALUES.get(value, value)


def _is_inbound(direction: Any) -> bool:
    if direction is None or direction == "inbound":
        return True
    if direction == "outbound":
        return False
    if isinstance(direction, str):
        raise _Invalid(RejectReason.BAD_TYPE, "direction is neither inbound nor outbound")
    raise _Invalid(RejectReason.BAD_TYPE, f"direction is a {type(direction).__name__}")
