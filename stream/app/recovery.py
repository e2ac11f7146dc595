"""Table recovery that does not depend on the broker's "latest offset" answer.

Faust recovers a changelog partition up to the end offset the broker lists
(ListOffsets). Some Kafka-compatible brokers answer that short when the last batch holds
several records (the embedded one does: first offset of the last batch + 1), while the
high-water mark a Fetch response carries is right. Recovery stopping early would bring
tables back a few customers short, so the worker confirms every listed end offset with a
fetch. On Apache Kafka both agree and this costs one small fetch per rebalance.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

HIGHWATER_TIMEOUT_S = 10.0


class HighwaterUnavailable(RuntimeError):
    """No fetch answered for some partitions within the timeout."""


async def fetched_highwaters(
    client_options: dict[str, Any], listed: Mapping[Any, int], timeout: float = HIGHWATER_TIMEOUT_S
) -> dict[Any, int]:
    """End offsets as a Fetch reports them, for partitions whose listed end is ``listed``.

    Keys are ``(topic, partition)`` tuples (aiokafka ``TopicPartition`` or Faust ``TP``);
    the result never goes below the listed value. Fetching from one record before the
    listed end suffices: the answer carries the high-water mark, records or not.
    """
    result = dict(listed)
    wanted = {TopicPartition(tp[0], tp[1]): tp for tp, end in listed.items() if end}
    if not wanted:
        return result
    probe = AIOKafkaConsumer(
        enable_auto_commit=False, max_partition_fetch_bytes=65_536, **client_options
    )
    await probe.start()
    try:
        probe.assign(list(wanted))
        for partition, key in wanted.items():
            probe.seek(partition, max(listed[key] - 1, 0))
        pending = set(wanted)
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            await probe.getmany(*pending, timeout_ms=100)
            for partition in list(pending):
                highwater = probe.highwater(partition)
                if highwater is not None:
                    key = wanted[partition]
                    result[key] = max(highwater, listed[key])
                    pending.discard(partition)
        if pending:
            raise HighwaterUnavailable(f"no fetch high-water mark for {sorted(pending)}")
    finally:
        await probe.stop()
    return result


def recover_to_fetched_highwaters(client_options: dict[str, Any]) -> None:
    """Make Faust's recovery read changelogs up to the fetched high-water mark.

    Faust 0.15 asks for end offsets during recovery in one place,
    ``AIOKafkaConsumerThread._highwaters`` (active and standby alike), so wrapping it makes
    recovery, its logs and its consistency check all use the confirmed numbers.
    """
    from faust.transport.drivers import aiokafka as faust_aiokafka

    thread_class: Any = faust_aiokafka.AIOKafkaConsumerThread
    listed_highwaters = getattr(thread_class._highwaters, "_rcr_listed", thread_class._highwaters)

    async def confirmed_highwaters(self: Any, partitions: Any) -> Mapping[Any, int]:
        return await fetched_highwaters(client_options, await listed_highwaters(self, partitions))

    confirmed_highwaters._rcr_listed = listed_highwaters  # type: ignore[attr-defined]
    thread_class._highwaters = confirmed_highwaters
