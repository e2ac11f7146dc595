"""The customers table written a batch at a time: store, changelog, and its order."""

from __future__ import annotations

import asyncio

import faust
import pytest

from stream.app.changelog import read_changelog
from stream.app.state import CustomerTable
from stream.embedded import EmbeddedBroker
from stream.engine import CustomerTimeline
from tests.integration.test_embedded import unique

pytestmark = pytest.mark.integration

PARTITIONS = 2


def timeline(*timestamps: int) -> CustomerTimeline:
    return CustomerTimeline((ts, f"k{ts}", "chat", "billing", ()) for ts in timestamps)


def test_written_timelines_are_stored_and_in_the_changelog_in_order(broker: EmbeddedBroker):
    app_id = unique("table-writes")
    options = {"bootstrap_servers": broker.bootstrap}

    async def scenario() -> tuple[
        CustomerTable, dict[str, CustomerTimeline], dict[int, dict[str, CustomerTimeline]]
    ]:
        # Small producer batches: the 300 customers below need several.
        app = faust.App(app_id, broker=broker.url, store="memory://", producer_max_batch_size=4096)
        table = CustomerTable(
            app,
            name="customers",
            default=None,
            partitions=PARTITIONS,
            client_options=options,
            dimensions=(),
        )
        app.tables.add(table)
        await app.producer.start()
        try:
            await table.changelog_topic.maybe_declare()
            first = [(f"c{n}", timeline(n)) for n in range(300)]
            assert await table.write(0, first) == 300
            # Later writes of the same customers win; None deletes.
            await table.write(0, [("c1", timeline(1, 2)), ("c2", None)])
            await table.write(1, [("d1", timeline(7))])
            await table.delivered()
        finally:
            await app.producer.stop()
        changelog = await read_changelog(table.changelog_topic.get_topic_name(), options)
        return table, changelog.timelines, changelog.partitions

    table, timelines, partitions = asyncio.run(scenario())
    assert len(timelines) == 300  # 300 - c2 + d1
    assert timelines["c1"] == timeline(1, 2)
    assert "c2" not in timelines
    assert "d1" in partitions[1] and "c299" in partitions[0]
    stored = table.timelines_by_partition([0, 1])
    assert set(stored[0]) == set(timelines) - {"d1"}
    assert stored[1] == {"d1": timeline(7)}


def test_partitions_another_worker_wrote_while_this_one_was_out_are_read_again(
    broker: EmbeddedBroker, monkeypatch
):
    """A worker dropped from the group unawares (no heartbeats while a long assignment
    callback runs) is absent from a generation in which another worker may own its
    partitions, count contacts, write their timelines and commit their offsets. Back in
    the group, Faust calls those partitions kept: the store must read again those whose
    changelog gained records it did not write, or those contacts are lost behind the
    committed offsets. Memory is kept across consecutive generations, even when the
    changelog gained records (a dropped worker's last writes, whose offsets it could not
    commit: the owner counts those records itself), and after a missed generation in
    which nobody else wrote."""
    from aiokafka import AIOKafkaProducer
    from faust.types import TP

    from stream.app import state

    app_id = unique("table-kept")
    options = {"bootstrap_servers": broker.bootstrap}
    reads: list[set[int]] = []

    async def counted_read(topic, client_options, partitions, dimensions):
        reads.append(set(partitions))
        return await read_changelog(topic, client_options, partitions, dimensions)

    monkeypatch.setattr(state, "read_changelog", counted_read)

    async def scenario() -> list[dict[str, CustomerTimeline]]:
        app = faust.App(app_id, broker=broker.url, store="memory://")
        table = CustomerTable(
            app, name="customers", default=None, partitions=1, client_options=options, dimensions=()
        )
        app.tables.add(table)
        await app.producer.start()
        other_worker = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
        await other_worker.start()
        seen = []
        try:
            await table.changelog_topic.maybe_declare()
            topic = table.changelog_topic.get_topic_name()
            tp, store = TP(topic, 0), table.data

            async def other_writes(customer: str, stored: CustomerTimeline) -> None:
                await other_worker.send_and_wait(topic, stored.to_bytes(), key=customer.encode())

            async def own_writes(customer: str, stored: CustomerTimeline) -> None:
                await table.write(0, [(customer, stored)])
                await table.delivered()

            await own_writes("c1", timeline(1))
            await store.on_rebalance({tp}, set(), {tp}, 1)  # assigned: read
            await own_writes("c1", timeline(1, 2))
            await other_writes("c3", timeline(3))
            await store.on_rebalance({tp}, set(), set(), 2)  # kept: memory
            seen.append(table.timelines_by_partition([0])[0])
            await own_writes("c4", timeline(4))
            await store.on_rebalance({tp}, set(), set(), 4)  # 3 without it, no one wrote
            seen.append(table.timelines_by_partition([0])[0])
            await other_writes("c2", timeline(5))
            await store.on_rebalance({tp}, set(), set(), 6)  # 5 without it: read again
            seen.append(table.timelines_by_partition([0])[0])
        finally:
            await other_worker.stop()
            await app.producer.stop()
        return seen

    kept, nobody_else_wrote, another_wrote = asyncio.run(scenario())
    assert kept == {"c1": timeline(1, 2)}
    assert nobody_else_wrote == {"c1": timeline(1, 2), "c4": timeline(4)}
    assert another_wrote == {
        "c1": timeline(1, 2),
        "c2": timeline(5),
        "c3": timeline(3),
        "c4": timeline(4),
    }
    assert reads == [{0}, {0}]
