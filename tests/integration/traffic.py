"""Contact traffic for integration tests, and what the engine makes of it offline."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterable

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from stream.engine import Engine, EngineConfig, Figures, Rejection, decode_contact
from stream.engine.exclusions import ExclusionPolicy, exclusion_of

MINUTE_MS = 60_000


def safe_now_ms() -> int:
    """Now, unless a UTC day starts within five minutes: then wait for it to pass.

    Live and offline figures are compared at slightly different instants; keeping every
    event away from a window or day boundary keeps that difference out of the result.
    """
    now = int(time.time() * 1000)
    into_day = now % 86_400_000
    if into_day < 5 * MINUTE_MS:
        time.sleep((5 * MINUTE_MS - into_day) / 1000 + 1)
        now = int(time.time() * 1000)
    return now


def contact_records(count: int, seed: int, now_ms: int) -> list[tuple[bytes | None, bytes]]:
    """(key, value) records: mostly keyed by customer, some unkeyed, some redelivered,
    some outbound, timestamps in the last 50 minutes (and never before today)."""
    rnd = random.Random(seed)
    day_start = now_ms - now_ms % 86_400_000
    earliest = max(now_ms - 50 * MINUTE_MS, day_start + MINUTE_MS)
    records: list[tuple[bytes | None, bytes]] = []
    for n in range(count):
        customer = f"cust-{int(rnd.paretovariate(1.2)) % 400}"
        document = {
            "contact_id": f"contact-{seed}-{n}",
            "customer_id": customer,
            "timestamp": rnd.randint(earliest, now_ms - MINUTE_MS),
            "channel": rnd.choice(["phone", "chat", "email"]),
            "reason": rnd.choice(["billing", "login", "delivery"]),
            "direction": "outbound" if rnd.random() < 0.03 else "inbound",
        }
        key = None if rnd.random() < 0.1 else customer.encode()
        record = (key, orjson.dumps(document))
        records.append(record)
        if rnd.random() < 0.05:
            records.append(record)  # at-least-once upstream: the same record twice
    return records


def produce(bootstrap: str, topic: str, records: Iterable[tuple[bytes | None, bytes]]) -> None:
    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
        await producer.start()
        try:
            for key, value in records:
                await producer.send(topic, value, key=key)
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(send())


def offline_figures(
    records: Iterable[tuple[bytes | None, bytes]],
    now_ms: int,
    exclusions: ExclusionPolicy | None = None,
) -> dict[str, dict[tuple[str, str], Figures]]:
    """The engine on the same records, in one process: what the cluster must show."""
    engine = Engine(EngineConfig(), now_ms=now_ms)
    policy = exclusions or ExclusionPolicy()
    for _, value in records:
        event = decode_contact(value)
        if not isinstance(event, Rejection) and exclusion_of(event, policy) is None:
            engine.ingest(event)
    return engine.figures()


def read_topic(
    bootstrap: str, topic: str, expected: int, timeout: float = 60.0
) -> list[ConsumerRecord]:
    """Every record of ``topic`` from the start, until ``expected`` arrived (or the timeout)."""

    async def read() -> list[ConsumerRecord]:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=1 << 20,
        )
        await consumer.start()
        found: list[ConsumerRecord] = []
        try:
            deadline = time.monotonic() + timeout
            while len(found) < expected and time.monotonic() < deadline:
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    found += batch
        finally:
            await consumer.stop()
        return found

    return asyncio.run(read())
