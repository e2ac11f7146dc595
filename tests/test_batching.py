"""The batch path's bookkeeping: which offsets may be committed, and when not at all."""

from __future__ import annotations

import asyncio
from collections.abc import Collection

import faust
import pytest
from aiokafka.structs import ConsumerRecord
from faust.types import TP

from stream.app.batching import (
    BatchingConsumer,
    BatchRoute,
    Fetched,
    ProcessedOffsets,
    unread,
    use_batching_consumer,
)

CONTACTS = "contacts"


def records(topic: str, partition: int, *offsets: int) -> list[ConsumerRecord]:
    return [
        ConsumerRecord(topic, partition, offset, 0, 0, b"k", b"v", None, 1, 1, ())
        for offset in offsets
    ]


def test_a_handled_batch_makes_the_offset_after_its_last_record_committable():
    offsets = ProcessedOffsets()
    p0, p1 = TP(CONTACTS, 0), TP(CONTACTS, 1)
    marked = offsets.processed([(p0, records(CONTACTS, 0, 5, 6, 7)), (p1, records(CONTACTS, 1, 3))])
    assert marked == 4
    assert sorted(offsets.pending()) == [p0, p1]
    assert offsets.take(p0) == 8
    assert offsets.take(p0) is None  # taken by the commit that uses it


def test_partitions_left_to_their_new_owner_are_not_marked():
    offsets = ProcessedOffsets()
    p0, p3 = TP(CONTACTS, 0), TP(CONTACTS, 3)
    marked = offsets.processed(
        [(p0, records(CONTACTS, 0, 1)), (p3, records(CONTACTS, 3, 9, 10))], left={p3}
    )
    assert marked == 1
    assert list(offsets.pending()) == [p0]


def test_an_older_batch_never_moves_the_committable_offset_back():
    offsets = ProcessedOffsets()
    p0 = TP(CONTACTS, 0)
    offsets.processed([(p0, records(CONTACTS, 0, 20))])
    offsets.processed([(p0, records(CONTACTS, 0, 4))])
    assert offsets.take(p0) == 21


def test_revoked_partitions_are_forgotten():
    offsets = ProcessedOffsets()
    p0, p1 = TP(CONTACTS, 0), TP(CONTACTS, 1)
    offsets.processed([(p0, records(CONTACTS, 0, 1)), (p1, records(CONTACTS, 1, 1))])
    offsets.forget({p1})
    assert list(offsets.pending()) == [p0]


def test_records_before_the_read_offset_are_not_delivered_again():
    fetched = records(CONTACTS, 0, 3, 4, 5, 6)
    assert unread(fetched, None) is fetched
    assert unread(fetched, 3) is fetched
    assert [r.offset for r in unread(fetched, 5)] == [5, 6]  # Faust's rule: offset >= read
    assert unread(fetched, 7) == []


class Route:
    """A batch route whose changelog delivery can be made to fail."""

    def __init__(self) -> None:
        self.delivery_error: Exception | None = None

    async def on_batch(self, fetched: Fetched) -> Collection[TP]:
        return set()

    async def before_commit(self) -> None:
        if self.delivery_error is not None:
            raise self.delivery_error


def consumer_for(route: Route) -> BatchingConsumer:
    app = faust.App("rcr-test-batching", broker="kafka://127.0.0.1:1")
    use_batching_consumer(
        app, BatchRoute(frozenset({CONTACTS}), route.on_batch, route.before_commit)
    )
    consumer = app.consumer
    assert isinstance(consumer, BatchingConsumer)
    return consumer


def test_faust_commits_the_processed_offsets_of_the_batch_topics():
    consumer = consumer_for(Route())
    p0 = TP(CONTACTS, 0)
    consumer._processed.processed([(p0, records(CONTACTS, 0, 5, 6, 7))])
    assert list(consumer._filter_tps_with_pending_acks()) == [p0]
    assert list(consumer._filter_tps_with_pending_acks({"other-topic"})) == []
    assert consumer._filter_committable_offsets([p0]) == {p0: 8}


def test_no_offset_is_committed_when_the_changelog_was_not_delivered():
    route = Route()
    route.delivery_error = RuntimeError("changelog batch failed")
    consumer = consumer_for(route)
    p0 = TP(CONTACTS, 0)

    async def commit() -> bool:
        return await consumer._commit_offsets({p0: 8})

    assert asyncio.run(commit()) is False
    assert consumer._committed_offset[p0] is None
    assert consumer._crash_reason is route.delivery_error  # the worker stops


@pytest.mark.parametrize("topic", ["contacts-changelog", "other"])
def test_other_topics_keep_fausts_per_message_acks(topic):
    consumer = consumer_for(Route())
    tp = TP(topic, 0)
    consumer._acked[tp].extend([10, 11, 12])
    assert consumer._new_offset(tp) == 13


class Rebalancing:
    """A batch handler during which a rebalance may begin (a new generation)."""

    def __init__(self, left: Collection[TP] = ()) -> None:
        self.handled: list[Fetched] = []
        self.left = left
        self.consumer: BatchingConsumer | None = None
        self.rebalance_while_handling = False

    async def on_batch(self, fetched: Fetched) -> Collection[TP]:
        self.handled.append(fetched)
        if self.rebalance_while_handling:
            assert self.consumer is not None
            self.consumer.app.consumer_generation_id += 1
        return self.left

    async def before_commit(self) -> None:
        return None


def batch_consumer(handler: Rebalancing) -> BatchingConsumer:
    app = faust.App("rcr-test-batching", broker="kafka://127.0.0.1:1")
    use_batching_consumer(
        app, BatchRoute(frozenset({CONTACTS}), handler.on_batch, handler.before_commit)
    )
    app.flow_control.resume()  # as after an assignment
    consumer = handler.consumer = app.consumer
    assert isinstance(consumer, BatchingConsumer)
    return consumer


def handle(consumer: BatchingConsumer, fetched: Fetched, generation: int) -> None:
    asyncio.run(asyncio.wait_for(consumer._handle_batch(fetched, generation), 5))


def test_a_handled_batch_is_committable_and_counted_by_fausts_sensors():
    handler = Rebalancing()
    consumer = batch_consumer(handler)
    p0 = TP(CONTACTS, 0)
    handle(consumer, [(p0, records(CONTACTS, 0, 5, 6, 7))], consumer.app.consumer_generation_id)
    assert len(handler.handled) == 1
    assert consumer._filter_committable_offsets([p0]) == {p0: 8}
    assert consumer.app.monitor.messages_received_total == 3


def test_a_batch_fetched_before_a_rebalance_is_not_handled():
    handler = Rebalancing()
    consumer = batch_consumer(handler)
    p0 = TP(CONTACTS, 0)
    fetched_in = consumer.app.consumer_generation_id
    consumer.app.consumer_generation_id += 1
    handle(consumer, [(p0, records(CONTACTS, 0, 5))], fetched_in)
    assert handler.handled == []
    assert list(consumer._processed.pending()) == []


def test_a_batch_overtaken_by_a_rebalance_is_not_committed():
    # Its records are fetched again from the committed offset; the state is idempotent.
    handler = Rebalancing()
    handler.rebalance_while_handling = True
    consumer = batch_consumer(handler)
    p0 = TP(CONTACTS, 0)
    handle(consumer, [(p0, records(CONTACTS, 0, 5))], consumer.app.consumer_generation_id)
    assert len(handler.handled) == 1
    assert list(consumer._processed.pending()) == []


def test_partitions_the_handler_left_alone_are_not_committed():
    p0, p3 = TP(CONTACTS, 0), TP(CONTACTS, 3)
    handler = Rebalancing(left={p3})
    consumer = batch_consumer(handler)
    fetched = [(p0, records(CONTACTS, 0, 1)), (p3, records(CONTACTS, 3, 9))]
    handle(consumer, fetched, consumer.app.consumer_generation_id)
    assert list(consumer._processed.pending()) == [p0]


def test_a_batch_still_running_when_the_fetch_loop_stops_is_committed_once_done():
    # At shutdown Faust cancels the fetch loop, then waits for streams (``wait_empty``)
    # and commits: the batch finishes, and its offsets are part of that commit.
    release = asyncio.Event()

    class Slow(Rebalancing):
        async def on_batch(self, fetched: Fetched) -> Collection[TP]:
            await release.wait()
            return await super().on_batch(fetched)

    handler = Slow()
    consumer = batch_consumer(handler)
    p0 = TP(CONTACTS, 0)

    async def scenario() -> None:
        loop = asyncio.ensure_future(
            consumer._handle_batch(
                [(p0, records(CONTACTS, 0, 5, 6))], consumer.app.consumer_generation_id
            )
        )
        await asyncio.sleep(0.01)
        loop.cancel()
        release.set()
        await asyncio.wait_for(consumer.wait_for_batch_in_flight(), 5)
        assert loop.cancelled()

    asyncio.run(scenario())
    assert len(handler.handled) == 1
    assert consumer._filter_committable_offsets([p0]) == {p0: 7}
