"""Follow a compacted topic on every worker: the latest value per key, all partitions.

Used for the ``customer-base`` topic and for the per-partition figures that make the two
``_rate`` gauges cluster-wide. A plain consumer without a group (every worker reads every
partition), from the beginning, forever; broker errors are retried with backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)

V = TypeVar("V")
Decode = Callable[[bytes | None, bytes | None], tuple[str, V] | None]
MAX_BACKOFF_S = 10.0


class CompactedTopicView(Generic[V]):
    def __init__(self, topic: str, decode: Decode[V], client_options: dict[str, Any]) -> None:
        self.topic = topic
        self.decode = decode
        self.client_options = client_options
        self.latest: dict[str, V] = {}
        self.undecodable = 0

    async def run(self) -> None:
        await follow_forever(self.topic, self._follow)

    async def _follow(self) -> None:
        consumer = AIOKafkaConsumer(
            enable_auto_commit=False, auto_offset_reset="earliest", **self.client_options
        )
        await consumer.start()
        try:
            partitions = await self._partitions(consumer)
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            while True:
                batches = await consumer.getmany(timeout_ms=500, max_records=5000)
                for records in batches.values():
                    for record in records:
                        self._apply(record.key, record.value)
        finally:
            await consumer.stop()

    async def _partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        while True:
            numbers = consumer.partitions_for_topic(self.topic)
            if numbers:
                return [TopicPartition(self.topic, n) for n in sorted(numbers)]
            await asyncio.sleep(0.5)
            await consumer.topics()  # refreshes metadata: the topic may appear later

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        if value is None and key is not None:  # a tombstone removes the key
            self.latest.pop(key.decode(errors="replace"), None)
            return
        decoded = self.decode(key, value)
        if decoded is None:
            self.undecodable += 1
            return
        name, latest = decoded
        self.latest[name] = latest


async def follow_forever(
    topic: str,
    follow: Callable[[], Awaitable[None]],
    errors: tuple[type[BaseException], ...] = (KafkaError, OSError),
) -> None:
    """Run ``follow`` again after each failure, backing off (0.5 s doubling to
    MAX_BACKOFF_S): the broker is someone else's, its outages are waited out."""
    backoff = 0.5
    while True:
        try:
            await follow()
        except errors as exc:
            log.warning("following %s failed, resuming: %s", topic, exc)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
