"""The per-customer state in a changelog-backed Faust table.

Faust's windowed tables are not used: hopping windows cost a changelog write per hop per
event, expire on the wall clock only, never expire keys restored from the changelog
(faust-streaming #385) and have no sliding window. The engine keeps the windows; this
plain table keeps each customer's timeline, which is all a restarted worker needs.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.serializers import codecs
from faust.stores.memory import Store as MemoryStore
from faust.types import TP

from stream.app.changelog import Changelog, last_offsets, read_changelog
from stream.engine import CustomerTimeline

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
    memory: only their end offsets are refreshed.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        self._last_offsets: dict[TP, int] = {}

    def persisted_offset(self, tp: TP) -> int | None:
        return self._last_offsets.get(tp)

    async def on_rebalance(
        self, assigned: set[TP], revoked: set[TP], newly_assigned: set[TP], generation_id: int = 0
    ) -> None:
        table: Any = self.table
        topic = table.changelog_topic.get_topic_name()
        for tp in revoked:
            self._last_offsets.pop(tp, None)
        mine = {tp.partition for tp in assigned if tp.topic == topic}
        fresh = {tp.partition for tp in newly_assigned if tp.topic == topic}
        fresh |= {p for p in mine if TP(topic, p) not in self._last_offsets}
        if fresh:
            self._load(topic, await read_changelog(topic, table.client_options, fresh), fresh)
        kept = mine - fresh
        if kept:
            ends = await last_offsets(topic, table.client_options, kept)
            self._last_offsets.update({TP(topic, p): end for p, end in ends.items()})

    def _load(self, topic: str, changelog: Changelog, partitions: set[int]) -> None:
        stale = [key for key, p in self._key_partition.items() if p in partitions]
        for key in stale:  # deleted while another worker owned the partition
            self.data.pop(key, None)
            self._key_partition.pop(key, None)
        self.data.update(changelog.timelines)
        self._key_partition.update(changelog.partition_of)
        for partition, offset in changelog.last_offsets.items():
            self._last_offsets[TP(topic, partition)] = offset


class CustomerTable(faust.Table):
    """A table whose writes name their partition.

    The agent writes in batches and a timer writes expiries, so "the partition of the
    current event" (Faust's default) is not the key's partition; and hashing the key
    (``use_partitioner``) can disagree with the producer that partitioned the contacts.
    The partition the customer's contacts arrive on is the right one, and the caller
    knows it.
    """

    def __init__(self, *args: Any, client_options: dict[str, Any], **kwargs: Any) -> None:
        self.client_options = client_options  # for the bulk load of the changelog
        super().__init__(*args, schema=customer_table_schema(), **kwargs)
        # Faust derives changelog serializers from Record types; ours are codecs.
        self.key_serializer = KEY_CODEC
        self.value_serializer = TIMELINE_CODEC
        self._writing_partition: int | None = None

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

    def partition_for_key(self, key: Any) -> int | None:
        if self._writing_partition is not None:
            return self._writing_partition
        return super().partition_for_key(key)

    def put(self, partition: int, customer_id: str, timeline: CustomerTimeline | None) -> None:
        """Store (or with ``None`` delete) a customer's timeline in ``partition``."""
        self._writing_partition = partition
        try:
            if timeline is not None:
                self[customer_id] = timeline
            elif customer_id in self.data:
                del self[customer_id]
        finally:
            self._writing_partition = None
        self._remember_partition(customer_id, partition, timeline is not None)

    def _remember_partition(self, customer_id: str, partition: int, present: bool) -> None:
        # The memory store records key partitions only for keys it recovered; recording
        # ours too keeps "which keys belong to partition p" answerable after a rebalance.
        key_partition = getattr(self.data, "_key_partition", None)
        if key_partition is None:
            return
        if present:
            key_partition[customer_id] = partition
        else:
            key_partition.pop(customer_id, None)

    def timelines_of(self, partition: int) -> dict[str, CustomerTimeline]:
        """The stored timelines of one partition (after recovery)."""
        key_partition = getattr(self.data, "_key_partition", {})
        return {
            key: value
            for key, value in self.data.items()
            if key_partition.get(key) == partition and value is not None
        }
