"""Read the customers table straight from its changelog, in bulk.

The changelog is the table: the latest record per customer is its timeline (a tombstone:
none). A plain consumer reads it at full fetch speed up to each partition's fetched
high-water mark; the worker loads its partitions this way (`state.BulkLoadedStore`) and
``rcr rebuild-redis`` reads the whole topic.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from stream.app.recovery import fetched_highwaters
from stream.engine import CustomerTimeline
from stream.engine.timeline import TimelineReader


def changelog_topic(app_id: str) -> str:
    return f"{app_id}-customers-changelog"


@dataclass
class Changelog:
    # The latest timeline of each customer, by partition (its contacts' partition).
    partitions: dict[int, dict[str, CustomerTimeline]] = field(default_factory=dict)
    # Offset of the last record read per partition (-1: none): Faust's "persisted offset".
    last_offsets: dict[int, int] = field(default_factory=dict)

    @property
    def timelines(self) -> dict[str, CustomerTimeline]:
        """Every partition's timelines in one mapping."""
        merged: dict[str, CustomerTimeline] = {}
        for timelines in self.partitions.values():
            merged.update(timelines)
        return merged


async def read_changelog(
    topic: str,
    client_options: dict[str, Any],
    partitions: Iterable[int] | None = None,
    dimensions: tuple[str, ...] | None = None,
) -> Changelog:
    """The latest timeline of every customer of ``partitions`` (None: every partition),
    with the labels of ``dimensions`` (``TimelineReader``)."""
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **client_options)
    await consumer.start()
    try:
        if partitions is None:
            await consumer.topics()
            partitions = consumer.partitions_for_topic(topic) or set()
        wanted = [TopicPartition(topic, n) for n in sorted(partitions)]
        changelog = Changelog(
            partitions={tp.partition: {} for tp in wanted},
            last_offsets={tp.partition: -1 for tp in wanted},
        )
        if not wanted:
            return changelog
        ends = await _fetched_ends(consumer, client_options, wanted)
        consumer.assign(wanted)
        await consumer.seek_to_beginning(*wanted)
        pending = {tp for tp in wanted if ends[tp] > 0}
        reader = TimelineReader(dimensions)
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=1000, max_records=10_000)
            for tp, records in batches.items():
                _apply(changelog.partitions[tp.partition], records, reader)
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
        for tp in wanted:
            changelog.last_offsets[tp.partition] = ends[tp] - 1
        return changelog
    finally:
        await consumer.stop()


def _apply(
    timelines: dict[str, CustomerTimeline], records: list[ConsumerRecord], reader: TimelineReader
) -> None:
    """A partition's records, in order: a customer's last one wins, a tombstone deletes."""
    read = reader.read
    for record in records:
        key, value = record.key, record.value
        if key is None:
            continue
        if value is None:
            timelines.pop(key.decode(), None)
        else:
            timelines[key.decode()] = read(value)


async def last_offsets(
    topic: str, client_options: dict[str, Any], partitions: Iterable[int]
) -> dict[int, int]:
    """Offset of the last record of each partition (-1: none), confirmed by a fetch."""
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **client_options)
    await consumer.start()
    try:
        wanted = [TopicPartition(topic, n) for n in sorted(partitions)]
        if not wanted:
            return {}
        ends = await _fetched_ends(consumer, client_options, wanted)
        return {tp.partition: ends[tp] - 1 for tp in wanted}
    finally:
        await consumer.stop()


async def _fetched_ends(
    consumer: AIOKafkaConsumer, client_options: dict[str, Any], wanted: list[TopicPartition]
) -> dict[TopicPartition, int]:
    """End offsets as listed, confirmed by a fetch (see ``recovery``)."""
    return await fetched_highwaters(client_options, await consumer.end_offsets(wanted))
