"""Contact events and the outcome every record ends with (contract section 1)."""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


class ContactEvent(NamedTuple):
    """One validated contact. Times are integer milliseconds since the epoch (UTC)."""

    contact_id: str
    customer_id: str
    timestamp_ms: int
    channel: str = "unknown"
    reason: str = "unknown"
    inbound: bool = True
    # Legs of one contact chain (transfers, consults) share it: the chain counts once.
    chain_id: str | None = None
    # The contact-centre disposition, lower case (``abandoned``, ``completed``, ...) and how
    # long the customer waited before it: what tells an abandoned or short-abandoned contact.
    status: str | None = None
    wait_ms: int | None = None
    # Values of the extra label dimensions (RCR_DIMENSIONS), in their configured order.
    dimensions: tuple[str, ...] = ()


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    CHAINED = "chained"  # a further leg of a contact chain already counted
    # Excluded before the engine (stream.engine.exclusions): valid, but in no figure.
    ABANDONED = "abandoned"
    SHORT_ABANDONED = "short_abandoned"
    ANONYMOUS = "anonymous"  # no customer to attribute the contact to
    REJECTED = "rejected"


class RejectReason(StrEnum):
    INVALID_JSON = "invalid_json"
    MISSING_FIELD = "missing_field"
    BAD_TYPE = "bad_type"
    BAD_TIMESTAMP = "bad_timestamp"
    TOO_LATE = "too_late"
    TOO_FAR_IN_FUTURE = "too_far_in_future"
    TOO_LARGE = "too_large"


class Rejection(NamedTuple):
    """Why a record was refused; ``detail`` is for humans (stderr, logs at debug level)."""

    reason: RejectReason
    detail: str = ""
