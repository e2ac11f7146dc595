"""Every field validated, every rejection with the contract's reason."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.engine import ContactEvent, Rejection, RejectReason, decode_contact

GOOD = {"contact_id": "k1", "customer_id": "c1", "timestamp": "2017-10-31T22:10:47Z"}


def decode(document: object) -> ContactEvent | Rejection:
    return decode_contact(json.dumps(document).encode())


def test_a_minimal_event_gets_the_contract_defaults():
    assert decode(GOOD) == ContactEvent("k1", "c1", 1_509_487_847_000, "unknown", "unknown", True)


@pytest.mark.parametrize(
    ("timestamp", "millis"),
    [
        ("2017-10-31T22:10:47.123Z", 1_509_487_847_123),
        ("2017-10-31T23:10:47+01:00", 1_509_487_847_000),
        (1_509_487_847, 1_509_487_847_000),
        (1_509_487_847.5, 1_509_487_847_500),
        (1_509_487_847_123, 1_509_487_847_123),
    ],
)
def test_timestamps_in_every_accepted_form(timestamp, millis):
    assert decode({**GOOD, "timestamp": timestamp}).timestamp_ms == millis


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"contact_id": None}, RejectReason.MISSING_FIELD),
        ({"customer_id": "  "}, RejectReason.MISSING_FIELD),
        ({"timestamp": None}, RejectReason.MISSING_FIELD),
        ({"customer_id": 42}, RejectReason.BAD_TYPE),
        ({"contact_id": ["k"]}, RejectReason.BAD_TYPE),
        ({"channel": 3}, RejectReason.BAD_TYPE),
        ({"direction": "sideways"}, RejectReason.BAD_TYPE),
        ({"timestamp": True}, RejectReason.BAD_TYPE),
        ({"timestamp": "yesterday"}, RejectReason.BAD_TIMESTAMP),
        ({"timestamp": "2017-10-31T22:10:47"}, RejectReason.BAD_TIMESTAMP),  # no offset
        ({"timestamp": -5}, RejectReason.BAD_TIMESTAMP),
        ({"timestamp": 1e300}, RejectReason.BAD_TIMESTAMP),
        ({"customer_id": "x" * 300}, RejectReason.TOO_LARGE),
        ({"reason": "r" * 300}, RejectReason.TOO_LARGE),
    ],
)
def test_bad_fields_are_rejected_with_the_right_reason(change, reason):
    document = {key: value for key, value in {**GOOD, **change}.items() if value is not None}
    result = decode(document)
    assert isinstance(result, Rejection)
    assert result.reason is reason


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", RejectReason.INVALID_JSON),
        (b"[1, 2]", RejectReason.INVALID_JSON),
        (b"\xff\xfe{}", RejectReason.INVALID_JSON),
        (b'{"padding": "' + b"x" * 70_000 + b'"}', RejectReason.TOO_LARGE),
    ],
)
def test_undecodable_records_are_rejected(raw, reason):
    assert decode_contact(raw).reason is reason


def test_extra_fields_are_kept_out_but_do_not_invalidate():
    assert isinstance(decode({**GOOD, "text": "free text", "agent": 7}), ContactEvent)


def test_label_values_reserved_by_the_metrics_are_renamed():
    assert decode({**GOOD, "channel": "all"}).channel == "other"


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(raw):
    assert isinstance(decode_contact(raw), ContactEvent | Rejection)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(sorted({*GOOD, "channel", "direction"})),
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    )
)
def test_arbitrary_documents_never_raise(document):
    assert isinstance(decode(document), ContactEvent | Rejection)


def test_extra_dimensions_are_read_like_channel():
    record = b'{"contact_id": "k", "customer_id": "c", "timestamp": 0, "queue": " billing "}'
    event = decode_contact(record, dimensions=("queue", "language"))
    assert not isinstance(event, Rejection)
    assert event.dimensions == ("billing", "unknown")
    wrong = decode_contact(
        b'{"contact_id": "k", "customer_id": "c", "timestamp": 0, "queue": 7}',
        dimensions=("queue",),
    )
    assert isinstance(wrong, Rejection) and wrong.reason is RejectReason.BAD_TYPE
