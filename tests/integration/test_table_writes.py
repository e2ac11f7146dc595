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


def test_a_kept_partition_another_worker_wrote_to_is_read_again(
    broker: EmbeddedBroker, monkeypatch
):
    """A worker dropped from the group unawares keeps its partitions in its own view while
    another worker owns them and writes their changelog: when the partition comes back as
    "kept", the store must not trust its memory (the other worker's contacts are behind
    committed offsets: they would be lost), but read the changelog again. A partition
    only this worker wrote to is not read again."""
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

    async def scenario() -> tuple[dict[str, CustomerTimeline], dict[str, CustomerTimeline]]:
        app = faust.App(app_id, broker=broker.url, store="memory://")
        table = CustomerTable(
            app, name="customers", default=None, partitions=1, client_options=options, dimensions=()
        )
        app.tables.add(table)
        await app.producer.start()
        other_worker = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
        await other_worker.start()
        try:
            await table.changelog_topic.maybe_declare()
            topic = table.changelog_topic.get_topic_name()
            tp, store = TP(topic, 0), table.data
            await table.write(0, [("c1", timeline(1))])
            await table.delivered()
            await store.on_rebalance({tp}, set(), {tp}, 1)  # assigned: read
            await table.write(0, [("c1", timeline(1, 2)), ("c3", timeline(3))])
            await table.delivered()
            await store.on_rebalance({tp}, set(), set(), 2)  # kept; only its own writes since
            own_writes_only = table.timelines_by_partition([0])[0]
            await other_worker.send_and_wait(topic, timeline(5).to_bytes(), key=b"c2", partition=0)
            await table.write(0, [("c3", timeline(3, 4))])  # after the other's, as a zombie's
            await table.delivered()
            await store.on_rebalance({tp}, set(), set(), 4)  # kept in its view: read again
            return own_writes_only, table.timelines_by_partition([0])[0]
        finally:
            await other_worker.stop()
            await app.producer.stop()

    own_writes_only, after_the_other = asyncio.run(scenario())
    assert own_writes_only == {"c1": timeline(1, 2), "c3": timeline(3)}
    assert after_the_other == {"c1": timeline(1, 2), "c2": timeline(5), "c3": timeline(3, 4)}
    assert reads == [{0}, {0}]  # assigned, then written elsewhere; never for its own writes
