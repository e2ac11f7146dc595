"""The per-batch path without Faust: routing, dead letters, and partitions no longer ours."""

from __future__ import annotations

import orjson

from stream.app.partitions import PartitionEngines
from stream.app.processing import Consumed, ContactProcessor
from stream.engine import EngineConfig
from stream.engine.exclusions import AbandonedExclusion, ExclusionPolicy

NOW = 1_700_000_000_000


def processor(owned: set[int], policy: ExclusionPolicy | None = None) -> ContactProcessor:
    engines = PartitionEngines(EngineConfig(), NOW)
    for partition in owned:
        engines.restore(partition, {})
    return ContactProcessor(
        engines,
        65_536,
        partition_of=lambda customer: int(customer[-1]),
        exclusions=policy or ExclusionPolicy(),
    )


def record(
    partition: int, customer: str, contact: str = "k1", offset: int = 0, **fields: object
) -> Consumed:
    document = {"contact_id": contact, "customer_id": customer, "timestamp": NOW, **fields}
    return Consumed(partition, offset, customer.encode(), orjson.dumps(document))


def test_contacts_are_counted_on_their_customers_partition_only():
    result = processor({0, 1}).process([record(0, "c0"), record(0, "c1"), record(1, "c1")], NOW)
    assert result.outcomes == {("accepted", ""): 2}
    assert [customer for customer, _ in result.misrouted] == ["c1"]


def test_records_of_a_revoked_partition_are_left_to_its_new_owner():
    # A batch buffered before a rebalance can still hold them: counting them in a fresh
    # engine would overwrite the customer's stored timeline with a partial one.
    result = processor({0}).process([record(3, "c3"), record(3, "c3", "k2"), record(0, "c0")], NOW)
    assert result.not_ours == 2
    assert result.outcomes == {("accepted", ""): 1}
    assert not result.dead_letters and not result.misrouted


def test_bad_records_become_dead_letters_with_their_reason():
    bad = Consumed(0, 7, b"c0", b"{nope")
    result = processor({0}).process([bad], NOW)
    assert [(letter.record, letter.reason) for letter in result.dead_letters] == [
        (bad, "invalid_json")
    ]
    assert result.outcomes == {("rejected", "invalid_json"): 1}


def test_excluded_contacts_are_counted_under_their_outcome_and_reach_no_engine():
    engines_of = processor({0, 1}, ExclusionPolicy(AbandonedExclusion.ALL))
    records = [
        record(0, "c0", "k1", status="abandoned", wait_time=3),
        record(0, "c0", "k2", status="Abandoned_In_Queue", wait_time=300),
        record(1, "", "k3"),  # blank: no customer partition exists, so never misrouted
        record(0, "Anonymous", "k4"),
        record(1, "c1", "k5", direction="outbound"),
        record(0, "c0", "k6", status="completed", wait_time=3),
    ]
    result = engines_of.process(records, NOW)
    assert result.outcomes == {
        ("short_abandoned", ""): 1,
        ("abandoned", ""): 1,
        ("anonymous", ""): 2,
        ("ignored", ""): 1,
        ("accepted", ""): 1,
    }
    assert not result.dead_letters and not result.misrouted
    engine = engines_of.engines.engine(0)
    assert engine is not None and set(engine.customers) == {"c0"}
    assert engine.customers["c0"].has("k6") and not engine.customers["c0"].has("k1")


def test_without_exclusions_abandoned_contacts_count_as_before():
    records = [record(0, "c0", "k1", status="abandoned", wait_time=3)]
    assert processor({0}).process(records, NOW).outcomes == {("accepted", ""): 1}
