"""Exclusions: the pure decision against a case-by-case reference, and its batch tally."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from stream.engine import ContactEvent, Outcome, decode_contact
from stream.engine.exclusions import (
    AbandonedExclusion,
    ExcludedContacts,
    ExclusionPolicy,
    exclusion_of,
    identity_coverage,
    parse_anonymous_ids,
)

T = 1_509_487_847_000

policies = st.builds(
    ExclusionPolicy,
    st.sampled_from(list(AbandonedExclusion)),
    st.integers(1, 120_000),
    st.sets(st.sampled_from(["anonymous", "guest", "unknown", "walk-in"])).map(frozenset),
)
documents = st.fixed_dictionaries(
    {"contact_id": st.just("k"), "timestamp": st.just(T)},
    optional={
        "customer_id": st.sampled_from(["c1", "Guest", " ANONYMOUS ", "", "  ", None, "walk-in"]),
        "direction": st.sampled_from(["inbound", "outbound"]),
        "status": st.sampled_from(
            [None, "", "completed", "Abandoned", "abandoned_in_ivr", "Short Abandoned", "abandon"]
        ),
        "wait_time": st.none() | st.floats(0, 200) | st.integers(0, 200),
    },
)


def reference(document: dict, policy: ExclusionPolicy) -> Outcome | None:
    """The rules of docs/METRICS.md written out case by case, from the raw document."""
    if document.get("direction") == "outbound":
        return Outcome.IGNORED
    words = (document.get("status") or "").lower().replace("_", " ").split()
    wait = document.get("wait_time")
    abandoned = words[:1] == ["abandoned"]
    short = words == ["short", "abandoned"] or (
        abandoned and wait is not None and round(wait * 1000) < policy.short_abandon_threshold_ms
    )
    mode = policy.exclude_abandoned
    if short and mode in (AbandonedExclusion.SHORT, AbandonedExclusion.ALL):
        return Outcome.SHORT_ABANDONED
    if abandoned and not short and mode is AbandonedExclusion.ALL:
        return Outcome.ABANDONED
    customer = (document.get("customer_id") or "").strip().lower()
    if not customer or customer in policy.anonymous_customer_ids:
        return Outcome.ANONYMOUS
    return None


@given(documents, policies)
def test_the_decision_matches_the_reference(document, policy):
    decoded = decode_contact(orjson.dumps(document))
    if "customer_id" not in document:  # absent, not null: a producer bug, dead-lettered
        assert decoded.reason.value == "missing_field"
        return
    assert isinstance(decoded, ContactEvent)
    assert exclusion_of(decoded, policy) is reference(document, policy)


@given(
    st.text(min_size=1, max_size=20).filter(lambda s: s.strip()),
    st.sampled_from(list(AbandonedExclusion)),
)
def test_an_event_without_status_counts_as_before_under_every_setting(customer, mode):
    # Today's events carry no status: only placeholder and blank customer ids change outcome.
    policy = ExclusionPolicy(exclude_abandoned=mode, anonymous_customer_ids=frozenset())
    assert exclusion_of(ContactEvent("k", customer.strip(), T), policy) is None


def test_abandonment_is_judged_before_identity():
    # An abandoned call from a withheld number: left out as abandoned, so identity coverage
    # compares the population the figures count.
    event = ContactEvent("k", "", T, status="abandoned", wait_ms=2_000)
    assert exclusion_of(event, ExclusionPolicy(AbandonedExclusion.SHORT)) is Outcome.SHORT_ABANDONED
    assert exclusion_of(event, ExclusionPolicy(AbandonedExclusion.NONE)) is Outcome.ANONYMOUS


def test_an_abandon_without_wait_time_is_not_short():
    event = ContactEvent("k", "c", T, status="abandoned")
    assert exclusion_of(event, ExclusionPolicy(AbandonedExclusion.SHORT)) is None
    assert exclusion_of(event, ExclusionPolicy(AbandonedExclusion.ALL)) is Outcome.ABANDONED


def test_the_threshold_is_exclusive():
    policy = ExclusionPolicy(AbandonedExclusion.SHORT, 10_000)
    at = ContactEvent("k", "c", T, status="abandoned", wait_ms=10_000)
    below = at._replace(wait_ms=9_999)
    assert (exclusion_of(below, policy), exclusion_of(at, policy)) == (
        Outcome.SHORT_ABANDONED,
        None,
    )


def test_anonymous_ids_are_a_case_insensitive_list():
    assert parse_anonymous_ids(" Guest, ,UNKNOWN,") == {"guest", "unknown"}
    assert parse_anonymous_ids("") == frozenset()
    assert ExclusionPolicy().anonymous_customer_ids >= {"anonymous", "unknown", "guest"}


def test_the_batch_tally_counts_each_excluded_contact_once_in_its_period():
    day = 86_400_000
    excluded = ExcludedContacts(ExclusionPolicy(), lambda ms: ms // day)
    events = [
        ContactEvent("a", "c1", T),
        ContactEvent("b", "guest", T),
        ContactEvent("b", "guest", T),  # a duplicate: once, as for every contact of a batch
        ContactEvent("c", "", T + day),
        ContactEvent("d", "", T, inbound=False),  # outbound: no figure counts it
    ]
    assert [event.contact_id for event in excluded.admit(events)] == ["a"]
    assert excluded.in_period(T // day) == {"abandoned": 0, "short_abandoned": 0, "anonymous": 1}
    assert excluded.in_period(T // day + 1)["anonymous"] == 1
    assert excluded.in_period(0)["anonymous"] == 0


def test_identity_coverage():
    assert identity_coverage(3, 1) == 0.75
    assert identity_coverage(0, 0) is None
