"""The per-customer state in a changelog-backed Faust table.

Faust's windowed tables are not used: hopping windows cost a changelog write per hop per
event, expire on the wall clock only, never expire keys restored from the changelog
(faust-streaming #385) and have no sliding window. The engine keeps the windows; this
plain table keeps each customer's timeline, which is all a restarted worker needs.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterable
from functools import partial
from itertools import compress, repeat
from typing import Any

import faust
from faust.serializers import codecs
from faust.stores.memory import Store as MemoryStore
from faust.types import TP

from stream.app.batching import count_sent
from stream.app.changelog import Changelog, last_offsets, read_changelog
from stream.app.heap import long_lived_state
from stream.engine import CustomerTimeline

log = logging.getLogger(__name__)

TIMELINE_CODEC = "rcr-timeline"
KEY_CODEC = "rcr-utf8"


class TimelineCodec(codecs.Codec):
    """Timelines as compact JSON arrays in the changelog."""

    def _dumps(self, obj: Any) -> bytes:
        return obj.to_bytes()  # type: ignore[no-any-return]

    def _loads(self, s: bytes) -> Any:
        return CustomerTimeline.from_bytes(s)


class Utf8Codec(codecs.Codec):
    """Customer ids as plain UTF-8 keys, readable by any Kafka tool."""

    def _dumps(self, obj: Any) -> bytes:
        return obj.encode() if isinstance(obj, str) else bytes(obj)

    def _loads(self, s: bytes) -> Any:
        return s.decode()


codecs.register(TIMELINE_CODEC, TimelineCodec())
codecs.register(KEY_CODEC, Utf8Codec())


def customer_table_schema() -> faust.Schema:
    return faust.Schema(
        key_type=str, value_type=bytes, key_serializer=KEY_CODEC, value_serializer=TIMELINE_CODEC
    )


class BulkLoadedStore(MemoryStore):
    """The memory store, filled from its changelog in bulk before Faust's recovery runs.

    Faust replays a changelog record by record through its stream machinery (about a
    thousand records a second here). Reading the newly assigned changelog partitions with a
    plain consumer instead, and reporting what was read as the persisted offset, leaves
    Faust's recovery nothing to do. Partitions kept across a rebalance are already in
    memory: only their end offsets are refreshed, unless this worker missed a generation
    of the group (dropped after missed heartbeats: aiokafka sends none while the
    assignment callback, this bulk load included, runs). Faust still calls its partitions
    kept, but another worker may have owned them meanwhile, counted contacts and committed
    their offsets: those whose changelog gained records this worker did not write are
    read again. The timelines come back with the labels of the extra dimensions configured
    now, and a fresh partition's are handed to the worker as read
    (``timelines_by_partition``) unless something changed it since.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        self._last_offsets: dict[TP, int] = {}
        self._generation: int | None = None  # of the group, at the last rebalance
        # The table's count of changelog records this worker delivered, per partition, when
        # ``_last_offsets`` was taken: what its own writes moved the end by since.
        self._delivered_then: dict[TP, int] = {}
        # Each freshly loaded partition's timelines, until the worker takes them to build
        # its engine, or until anything else changes the partition here.
        self._loaded: dict[int, dict[str, CustomerTimeline]] = {}

    def persisted_offset(self, tp: TP) -> int | None:
        return self._last_offsets.get(tp)

    async def on_rebalance(
        self, assigned: set[TP], revoked: set[TP], newly_assigned: set[TP], generation_id: int = 0
    ) -> None:
        table: Any = self.table
        topic = table.changelog_topic.get_topic_name()
        for tp in revoked:
            self._last_offsets.pop(tp, None)
            self._loaded.pop(tp.partition, None)
        missed = self._missed_a_generation(generation_id)
        mine = {tp.partition for tp in assigned if tp.topic == topic}
        fresh = {tp.partition for tp in newly_assigned if tp.topic == topic}
        fresh |= {p for p in mine if TP(topic, p) not in self._last_offsets}
        kept = mine - fresh
        if kept:
            delivered = dict(table.delivered_records)  # before the ends: never too few
            ends = await last_offsets(topic, table.client_options, kept)
            if missed:
                # Records another worker wrote while this one was out of the group hold
                # contacts behind offsets it committed. (Within generations this worker
                # took part in, records not its own can only be those of a worker dropped
                # unawares, whose offsets are not committed: memory is right then.)
                moved = {p for p, end in ends.items() if end != self._own_end(topic, p)}
                if moved:
                    log.warning(
                        "changelog partitions %s were written by another worker while this "
                        "one was out of the group: reading them again",
                        sorted(moved),
                    )
                fresh |= moved
                kept -= moved
            for p in kept:
                self._last_offsets[TP(topic, p)] = ends[p]
                self._delivered_then[TP(topic, p)] = delivered.get(p, 0)
        if fresh:
            with long_lived_state():
                changelog = await read_changelog(
                    topic, table.client_options, fresh, table.dimensions
                )
                self._load(topic, changelog, fresh)

    def _missed_a_generation(self, generation_id: int) -> bool:
        previous, self._generation = self._generation, generation_id
        if previous is None or generation_id <= previous + 1:
            return False
        log.warning(
            "generations %d to %d of the group went on without this worker",
            previous + 1,
            generation_id - 1,
        )
        return True

    def _own_end(self, topic: str, partition: int) -> int:
        """Where the partition's changelog ends if only this worker wrote to it since its
        end was last taken: that end, plus the records this worker delivered since."""
        tp = TP(topic, partition)
        table: Any = self.table
        written = table.delivered_records.get(partition, 0) - self._delivered_then.get(tp, 0)
        return self._last_offsets[tp] + written

    def _load(self, topic: str, changelog: Changelog, partitions: set[int]) -> None:
        delivered = dict(self.table.delivered_records)  # type: ignore[attr-defined]
        stale = [key for key, p in self._key_partition.items() if p in partitions]
        for key in stale:  # deleted while another worker owned the partition
            self.data.pop(key, None)
            self._key_partition.pop(key, None)
        for partition, timelines in changelog.partitions.items():
            self.data.update(timelines)
            self._key_partition.update(zip(timelines, repeat(partition)))
        self._loaded.update(changelog.partitions)
        for partition, offset in changelog.last_offsets.items():
            self._last_offsets[TP(topic, partition)] = offset
            self._delivered_then[TP(topic, partition)] = delivered.get(partition, 0)

    def apply_changelog_batch(self, batch: Any, to_key: Any, to_value: Any) -> None:
        """Faust's recovery, for records written after the bulk load read the partition."""
        events = list(batch)
        for event in events:
            self.changed(event.message.partition)
        super().apply_changelog_batch(events, to_key, to_value)

    def changed(self, partition: int) -> None:
        """The partition's loaded timelines are not all of it any more."""
        self._loaded.pop(partition, None)

    def timelines_by_partition(
        self, partitions: Iterable[int]
    ) -> dict[int, dict[str, CustomerTimeline]]:
        """The timelines of each of ``partitions``: as the bulk load read them (handed over
        once), or else picked out of all of them."""
        wanted = list(partitions)
        grouped = {p: self._loaded.pop(p) for p in wanted if p in self._loaded}
        missing = [p for p in wanted if p not in grouped]
        if missing:
            keys, partition_of_key = list(self._key_partition), list(self._key_partition.values())
            for partition in missing:
                # C-level passes: a million customers would take seconds key by key.
                mine = list(compress(keys, map(partition.__eq__, partition_of_key)))
                grouped[partition] = dict(zip(mine, map(self.data.__getitem__, mine), strict=True))
        return grouped


class CustomerTable(faust.Table):
    """The customers table, written a batch at a time.

    ``Table.__setitem__`` sends one changelog record per call through Faust's producer
    buffer (a future, a callback and sensor calls each) and takes its partition from "the
    current event", which a batch does not have. ``write`` instead stores a partition's
    changed timelines and appends their changelog records to one producer batch per
    partition: the same records (key: customer id, value: the timeline, or a tombstone)
    on the same changelog partition, so Faust's recovery and ``BulkLoadedStore`` read them
    as before. The partition is the one the customer's contacts arrive on, which the caller
    knows (hashing the key could disagree with the producer that partitioned them).
    """

    def __init__(
        self,
        *args: Any,
        client_options: dict[str, Any],
        dimensions: tuple[str, ...],
        **kwargs: Any,
    ) -> None:
        # For the bulk load of the changelog: timelines come back with the labels of the
        # extra dimensions configured now, as the engines' rebuild wants them.
        self.client_options = client_options
        self.dimensions = dimensions
        super().__init__(*args, schema=customer_table_schema(), **kwargs)
        # Faust derives changelog serializers from Record types; ours are codecs.
        self.key_serializer = KEY_CODEC
        self.value_serializer = TIMELINE_CODEC
        self._deliveries: list[asyncio.Future[Any]] = []
        # Changelog records this worker delivered, per partition (``BulkLoadedStore`` tells
        # from them whether another worker wrote to a partition while this one was away).
        self.delivered_records: Counter[int] = Counter()

    def _new_store(self) -> Any:
        return BulkLoadedStore(
            self._store or self.app.conf.store,
            self.app,
            self,
            table_name=self.name,
            key_type=self.key_type,
            key_serializer=self.key_serializer,
            value_serializer=self.value_serializer,
            value_type=self.value_type,
            options=self.options,
        )

    async def write(
        self, partition: int, changes: Iterable[tuple[str, CustomerTimeline | None]]
    ) -> int:
        """Store (``None``: delete) timelines of ``partition`` and send their changelog
        records; returns how many. Delivery is confirmed by ``delivered``."""
        store: Any = self.data
        timelines: dict[str, Any] = store.data
        key_partition: dict[str, int] = store._key_partition
        producer = self.app.producer._ensure_producer()  # type: ignore[attr-defined]
        topic = self.changelog_topic.get_topic_name()
        batch, in_batch, written = producer.create_batch(), 0, 0
        store.changed(partition)
        for customer_id, timeline in changes:
            if timeline is None:
                timelines.pop(customer_id, None)
                key_partition.pop(customer_id, None)
                value = None
            else:
                timelines[customer_id] = timeline
                key_partition[customer_id] = partition
                value = timeline.to_bytes()
            key = customer_id.encode()
            if batch.append(key=key, value=value, timestamp=None) is None:  # batch full
                await self._send(producer, batch, topic, partition, in_batch)
                batch, in_batch = producer.create_batch(), 0
                batch.append(key=key, value=value, timestamp=None)
            in_batch += 1
            written += 1
        if in_batch:
            await self._send(producer, batch, topic, partition, in_batch)
        return written

    async def _send(self, producer: Any, batch: Any, topic: str, partition: int, n: int) -> None:
        delivery = await producer.send_batch(batch, topic, partition=partition)
        delivery.add_done_callback(partial(self._count_delivered, partition, n))
        self._deliveries.append(delivery)
        count_sent(self.app, topic, n)

    def _count_delivered(self, partition: int, n: int, delivery: asyncio.Future[Any]) -> None:
        if not delivery.cancelled() and delivery.exception() is None:
            self.delivered_records[partition] += n

    async def delivered(self) -> None:
        """Wait until every changelog batch sent so far is acknowledged by the broker;
        raise the first failure (offsets must then not be committed)."""
        deliveries, self._deliveries = self._deliveries, []
        failures = [
            result
            for result in await asyncio.gather(*deliveries, return_exceptions=True)
            if isinstance(result, BaseException)
        ]
        if failures:
            raise failures[0]

    def timelines_by_partition(
        self, partitions: Iterable[int]
    ) -> dict[int, dict[str, CustomerTimeline]]:
        """The stored timelines of each of ``partitions`` (after recovery)."""
        store: BulkLoadedStore = self.data  # type: ignore[assignment]
        return store.timelines_by_partition(partitions)
