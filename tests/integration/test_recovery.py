"""Recovery reads every changelog to its fetched end, whatever the broker lists."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from stream.app.recovery import fetched_highwaters, recover_to_fetched_highwaters
from stream.embedded import EmbeddedBroker
from tests.integration.test_embedded import create_topic, unique

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
