"""Read the customers table straight from its changelog, without a worker.

For ``rcr rebuild-redis``: the changelog is the table, so the latest record per customer is
its timeline (a tombstone: none). Read up to each partition's fetched high-water mark.
"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from stream.app.recovery import fetched_highwaters
from stream.engine import CustomerTimeline


def changelog_topic(app_id: str) -> str:
    return f"{app_id}-customers-changelog"


async def read_timelines(topic: str, client_options: dict[str, Any]) -> dict[str, CustomerTimeline]:
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **client_options)
    await consumer.start()
    try:
        numbers = consumer.partitions_for_topic(topic) or set()
        if not numbers:
            await consumer.topics()
            numbers = consumer.partitions_for_topic(topic) or set()
        partitions = [TopicPartition(topic, n) for n in sorted(numbers)]
        if not partitions:
            return {}
        listed = await consumer.end_offsets(partitions)
        ends = await fetched_highwaters(client_options, listed)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        timelines: dict[str, CustomerTimeline] = {}
        pending = {tp for tp in partitions if ends[tp] > 0}
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=1000, max_records=10_000)
            for records in batches.values():
                for record in records:
                    _apply(timelines, record.key, record.value)
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
        return timelines
    finally:
        await consumer.stop()


def _apply(timelines: dict[str, CustomerTimeline], key: bytes | None, value: bytes | None) -> None:
    if key is None:
        return
    customer_id = key.decode()
    if value is None:
        timelines.pop(customer_id, None)
    else:
        timelines[customer_id] = CustomerTimeline.from_bytes(value)
