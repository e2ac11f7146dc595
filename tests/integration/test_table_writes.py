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
