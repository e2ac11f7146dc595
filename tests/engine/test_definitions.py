"""Repeat definitions: the text form, its errors, and which one is the headline when."""

from __future__ import annotations

import pytest

from stream.engine.definitions import (
    Definition,
    MatchingKey,
    headline_at,
    parse_definitions,
)

DAY = 86_400_000
JAN_1_2027 = 1_798_761_600_000


def test_the_text_form_names_key_interval_and_effective_time():
    assert parse_definitions(
        "default=customer/7d, same_issue=customer_reason/3d, v2=customer/1d@2027-01-01T00:00:00Z"
    ) == (
        Definition("default", MatchingKey.CUSTOMER, 7 * DAY),
        Definition("same_issue", MatchingKey.CUSTOMER_REASON, 3 * DAY),
        Definition("v2", MatchingKey.CUSTOMER, DAY, JAN_1_2027),
    )


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "at least one"),
        ("Bad-Name=customer/7d", "expected name="),
        ("a=customer", "interval is missing"),
        ("a=issue/7d", "matching key must be one of customer, customer_reason"),
        ("a=customer/0s", "positive whole number"),
        ("a=customer/7d@2027-01-01", "RFC 3339 with an offset"),
        ("a=customer/7d,a=customer/1d", "unique: a"),
    ],
)
def test_every_mistake_is_named(text, complaint):
    with pytest.raises(ValueError, match=complaint):
        parse_definitions(text)


def test_the_headline_is_the_first_definition_until_a_later_one_takes_effect():
    definitions = parse_definitions(
        "v1=customer/7d, side=customer_reason/7d,"
        " v2=customer/3d@2027-01-01T00:00:00Z, v3=customer/1d@2027-02-01T00:00:00Z"
    )
    names = [
        headline_at(definitions, moment).name
        for moment in (JAN_1_2027 - 1, JAN_1_2027, JAN_1_2027 + 40 * DAY)
    ]
    assert names == ["v1", "v2", "v3"]


def test_a_unit_is_the_customer_or_the_customer_and_reason():
    by_customer = Definition("a", MatchingKey.CUSTOMER, DAY)
    by_reason = Definition("b", MatchingKey.CUSTOMER_REASON, DAY)
    assert by_customer.unit_of("u1", "billing") == by_customer.unit_of("u1", "login")
    assert by_reason.unit_of("u1", "billing") != by_reason.unit_of("u1", "login")
