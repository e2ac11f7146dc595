"""The topics of ``RCR_DENOMINATORS``, read on every worker: all partitions, no group.

Each worker counts every record itself, so the figures are cluster-wide and the same on
every worker, like the customer base. A count topic is read from its beginning at start
(its retention should cover the longest window and the previous month) and its figures are
shown only once the reader reached where the topic ended then: a half-read topic would
make contacts per order look too high. After a broker error the reader resumes where it
stopped, never counting a record twice. A snapshot topic is a ``CompactedTopicView``.

These topics belong to other teams: a record that cannot be counted is skipped and counted
in ``rcr_denominator_records_total``, not dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Counter

from stream.app.follower import MAX_BACKOFF_S, CompactedTopicView, follow_forever
from stream.app.recovery import fetched_highwaters
from stream.engine.denominators import (
    LATEST,
    DenominatorValues,
    EventCounts,
    RecordOutcome,
    decode_count_record,
    decode_snapshot,
)
from stream.settings import DenominatorSpec, Settings

log = logging.getLogger(__name__)

Tally = Callable[[RecordOutcome], None]


class CountTopicReader:
    """Counts the records of one count topic into ``EventCounts``."""

    def __init__(
        self, topic: str, counts: EventCounts, client_options: dict[str, Any], tally: Tally
    ) -> None:
        self.topic = topic
        self.counts = counts
        self.client_options = client_options
        self.tally = tally
        # Next offset per partition: where a reconnect resumes.
        self.positions: dict[TopicPartition, int] = {}
        self.caught_up = False

    def values(self, wall_ms: int) -> DenominatorValues:
        self.counts.advance(wall_ms)
        return DenominatorValues("count", self.counts.totals() if self.caught_up else {})

    async def run(self) -> None:
        await wait_for_topic(self.topic, self.client_options)
        await follow_forever(self.topic, self._follow, (KafkaError, OSError, RuntimeError))

    async def _follow(self) -> None:
        consumer = AIOKafkaConsumer(
            enable_auto_commit=False, auto_offset_reset="earliest", **self.client_options
        )
        await consumer.start()
        try:
            partitions = [
                TopicPartition(self.topic, n)
                for n in sorted(consumer.partitions_for_topic(self.topic) or ())
            ]
            if not partitions:  # metadata without the topic: a new consumer, after a pause
                raise RuntimeError(f"no partitions of {self.topic} in the metadata yet")
            consumer.assign(partitions)
            for partition in partitions:
                if partition in self.positions:
                    consumer.seek(partition, self.positions[partition])
                else:
                    await consumer.seek_to_beginning(partition)
            targets = {} if self.caught_up else await self._ends(consumer, partitions)
            while True:
                batches = await consumer.getmany(timeout_ms=500, max_records=5000)
                for partition, records in batches.items():
                    for record in records:
                        self._count(record.value, record.timestamp)
                    if records:
                        self.positions[partition] = records[-1].offset + 1
                self.counts.advance(_wall_ms())
                if not self.caught_up:
                    self.caught_up = all(
                        self.positions.get(p, 0) >= end for p, end in targets.items()
                    )
        finally:
            await consumer.stop()

    async def _ends(
        self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """Where the topic ends now: figures wait until the reader got there."""
        listed = await consumer.end_offsets(partitions)
        return await fetched_highwaters(self.client_options, listed)

    def _count(self, value: bytes | None, record_timestamp_ms: int | None) -> None:
        record = decode_count_record(value, record_timestamp_ms)
        self.tally(RecordOutcome.REJECTED if record is None else self.counts.add(record))


class SnapshotTopicReader:
    """The latest value of segment ``all`` on one snapshot topic."""

    def __init__(self, topic: str, client_options: dict[str, Any], tally: Tally) -> None:
        def decode(key: bytes | None, value: bytes | None) -> tuple[str, float] | None:
            decoded = decode_snapshot(key, value)
            tally(RecordOutcome.REJECTED if decoded is None else RecordOutcome.ACCEPTED)
            return decoded

        self.client_options = client_options
        self.view = CompactedTopicView(topic, decode, client_options)

    def values(self, wall_ms: int) -> DenominatorValues:
        latest = self.view.latest.get("all")
        return DenominatorValues("snapshot", {} if latest is None else {LATEST: latest})

    async def run(self) -> None:
        await wait_for_topic(self.view.topic, self.client_options)
        await self.view.run()


class Denominators:
    """Every denominator of the settings, with their record counter."""

    def __init__(
        self,
        settings: Settings,
        client_options: dict[str, Any],
        registry: CollectorRegistry,
        now_ms: int,
    ) -> None:
        self.records = Counter(
            "rcr_denominator_records",
            "Records of the denominator topics by outcome (not counted ones are skipped)",
            ["name", "outcome"],
            registry=registry,
        )
        self.readers: dict[str, CountTopicReader | SnapshotTopicReader] = {}
        for spec in settings.denominator_specs:
            for outcome in (RecordOutcome.ACCEPTED, RecordOutcome.REJECTED):
                self.records.labels(spec.name, outcome.value)  # 0 until the first record
            self.readers[spec.name] = self._reader(spec, settings, client_options, now_ms)

    def _reader(
        self,
        spec: DenominatorSpec,
        settings: Settings,
        client_options: dict[str, Any],
        now_ms: int,
    ) -> CountTopicReader | SnapshotTopicReader:
        counter = self.records

        def tally(outcome: RecordOutcome) -> None:
            counter.labels(spec.name, outcome.value).inc()

        if spec.kind == "snapshot":
            return SnapshotTopicReader(spec.topic, client_options, tally)
        counts = EventCounts(
            settings.window_ms, now_ms, settings.timezone, settings.max_clock_skew_ms
        )
        return CountTopicReader(spec.topic, counts, client_options, tally)

    def values(self, wall_ms: int) -> dict[str, DenominatorValues]:
        return {name: reader.values(wall_ms) for name, reader in self.readers.items()}

    async def run(self) -> None:
        await asyncio.gather(*(reader.run() for reader in self.readers.values()))


async def wait_for_topic(topic: str, client_options: dict[str, Any]) -> None:
    """Until the topic exists: another team may create it after the workers start.

    A consumer only knows the partitions of topics that existed when it started (its
    metadata refreshes only every few minutes), so readers start once the topic is there.
    """
    backoff = 0.5
    while True:
        probe = AIOKafkaConsumer(enable_auto_commit=False, **client_options)
        try:
            await probe.start()
            while True:
                if topic in await probe.topics():
                    return
                await asyncio.sleep(1.0)
        except (KafkaError, OSError) as exc:
            log.warning("looking for topic %s failed, retrying: %s", topic, exc)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
        finally:
            await probe.stop()


def _wall_ms() -> int:
    return int(time.time() * 1000)
