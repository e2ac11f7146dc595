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
        # Absent, not blank: a blank or null customer id is an anonymous contact (below).
        ({"customer_id": None}, RejectReason.MISSING_FIELD),
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
        ({"chain_id": 12}, RejectReason.BAD_TYPE),
        ({"chain_id": "x" * 300}, RejectReason.TOO_LARGE),
        ({"status": True}, RejectReason.BAD_TYPE),
        ({"status": "s" * 300}, RejectReason.TOO_LARGE),
        ({"wait_time": "12s"}, RejectReason.BAD_TYPE),
        ({"wait_time": True}, RejectReason.BAD_TYPE),
        ({"wait_time": -1}, RejectReason.BAD_TYPE),
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


@pytest.mark.parametrize("customer_id", [None, "", "   "])
def test_a_null_or_blank_customer_id_is_a_valid_contact_without_customer(customer_id):
    # Not dead-lettered: exclusions.exclusion_of counts it as anonymous.
    assert decode({**GOOD, "customer_id": customer_id}).customer_id == ""


def test_status_wait_time_and_chain_id_are_read_when_given():
    event = decode(
        {**GOOD, "status": " Short-Abandoned ", "wait_time": 4.2, "chain_id": " call-9 "}
    )
    assert (event.status, event.wait_ms, event.chain_id) == ("short_abandoned", 4200, "call-9")
    assert decode({**GOOD, "status": "abandoned in queue"}).status == "abandoned_in_queue"


def test_absent_null_or_blank_optional_fields_are_none():
    for value in (None, "", "  "):
        event = decode({**GOOD, "status": value, "chain_id": value})
        assert (event.status, event.chain_id) == (None, None)
    assert decode({**GOOD, "wait_time": None}).wait_ms is None
    assert decode(GOOD)[6:9] == (None, None, None)


def test_label_values_reserved_by_the_metrics_are_renamed():
    assert decode({**GOOD, "channel": "all"}).channel == "other"


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(raw):
    assert isinstance(decode_contact(raw), ContactEvent | Rejection)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(sorted({*GOOD, "channel", "direction", "chain_id", "status", "wait_time"})),
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
