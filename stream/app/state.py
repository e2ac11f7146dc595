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


class CustomerTable(faust.Table):
    """A table whose writes name their partition.

    The agent writes in batches and a timer writes expiries, so "the partition of the
    current event" (Faust's default) is not the key's partition; and hashing the key
    (``use_partitioner``) can disagree with the producer that partitioned the contacts.
    The partition the customer's contacts arrive on is the right one, and the caller
    knows it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, schema=customer_table_schema(), **kwargs)
        # Faust derives changelog serializers from Record types; ours are codecs.
        self.key_serializer = KEY_CODEC
        self.value_serializer = TIMELINE_CODEC
        self._writing_partition: int | None = None

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
