"""Recovery reads every changelog to its fetched end, whatever the broker lists."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from stream.app.changelog import changelog_topic
from stream.app.recovery import fetched_highwaters, recover_to_fetched_highwaters
from stream.app.routing import customer_partition
from stream.embedded import EmbeddedBroker
from tests.integration.test_embedded import create_topic, unique
from tests.integration.workers import Stack

pytestmark = pytest.mark.integration


def test_fetched_highwaters_correct_a_short_listed_end_offset(broker: EmbeddedBroker) -> None:
    topic = unique("highwater")

    async def scenario() -> tuple[int, int]:
        await create_topic(broker.bootstrap, topic, partitions=1)
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=50)
        await producer.start()
        try:
            sent = [await producer.send(topic, f"r{i}".encode(), partition=0) for i in range(10)]
            await asyncio.gather(*sent)  # one batch of ten records
        finally:
            await producer.stop()
        tp = TopicPartition(topic, 0)
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap)
        await consumer.start()
        try:
            listed = await consumer.end_offsets([tp])
        finally:
            await consumer.stop()
        fetched = await fetched_highwaters({"bootstrap_servers": broker.bootstrap}, listed)
        return listed[tp], fetched[tp]

    listed, fetched = asyncio.run(scenario())
    assert fetched == 10
    assert listed <= fetched  # the embedded broker lists 1: first offset of the last batch + 1


def test_installing_the_recovery_check_twice_wraps_faust_once() -> None:
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    recover_to_fetched_highwaters({"bootstrap_servers": "localhost:1"})
    original = AIOKafkaConsumerThread._highwaters._rcr_listed
    recover_to_fetched_highwaters({"bootstrap_servers": "localhost:1"})
    assert AIOKafkaConsumerThread._highwaters._rcr_listed is original
    assert not hasattr(original, "_rcr_listed")


def test_a_worker_loads_its_table_from_the_changelog_in_bulk(broker, redis_server, tmp_path):
    """Customers written (and some deleted) in the changelog are what a new worker counts,
    loaded by the store before Faust's own record-by-record recovery would run."""
    stack = Stack(broker.url, redis_server.url, tmp_path)
    topic = changelog_topic(f"rcr-{stack.name}")
    now = int(time.time() * 1000)

    async def write() -> None:
        await create_topic(broker.bootstrap, topic, partitions=4)
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=20)
        await producer.start()
        try:
            for n in range(3000):
                customer = f"c{n}"
                timeline = [[now - 60_000 - n, f"k{n}", "chat", "login"]]
                partition = customer_partition(customer, 4)
                await producer.send(
                    topic, orjson.dumps(timeline), key=customer.encode(), partition=partition
                )
                if n % 15 == 0:  # deleted later: a tombstone
                    await producer.send(topic, None, key=customer.encode(), partition=partition)
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(write())
    worker = stack.start_worker()
    try:
        worker.wait_ready()
        label = (
            ("channel", "all"),
            ("definition", "default"),
            ("reason", "all"),
            ("window", "30d"),
        )
        assert worker.metrics()[("rcr_customers", label)] == 3000 - 200
        assert "Restoring state from changelog topics" not in worker.log.read_text()
    finally:
        worker.kill()
