"""The two reference points beside the worker: a plain aiokafka consumer and a naive agent."""

from __future__ import annotations

import sys
import time
import uuid
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from bench.progress import Progress, line
from bench.services import Services, spawn, stop, tail

FETCH_MAX_RECORDS = 5_000


async def raw_consumer(bootstrap: str, topic: str, count: int, timeout_s: float) -> dict[str, Any]:
    """Read ``count`` records without a group (no join wait), as fast as aiokafka can."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        progress = await _drain(consumer, count, timeout_s)
    finally:
        await consumer.stop()
    return line(
        "raw_consumer",
        progress.last_count,
        progress.seconds,
        progress.rate,
        unit="records/s",
        complete=progress.last_count >= count,
    )


async def _drain(consumer: AIOKafkaConsumer, count: int, timeout_s: float) -> Progress:
    progress = Progress(started=time.monotonic())
    deadline = progress.started + timeout_s
    seen = 0
    while seen < count and time.monotonic() < deadline:
        batches = await consumer.getmany(timeout_ms=200, max_records=FETCH_MAX_RECORDS)
        seen += sum(len(records) for records in batches.values())
        progress.observe(time.monotonic(), seen)
    return progress


def naive_faust(services: Services, topic: str, count: int, timeout_s: float) -> dict[str, Any]:
    """The naive agent as a child process, stopped as soon as it has counted ``count``."""
    name = uuid.uuid4().hex[:8]
    result = services.tmp / f"naive-{name}.json"
    log = services.tmp / f"naive-{name}.log"
    datadir = services.tmp / f"naive-{name}"
    args = [services.broker.url, topic, f"bench-naive-{name}", str(datadir), str(count)]
    started = time.monotonic()
    process = spawn([sys.executable, "-m", "bench.naive_agent", *args, str(result)], log)
    try:
        document = _wait_for_result(process, result, started + timeout_s, log)
    finally:
        stop(process)
    progress = Progress(started=started)
    progress.observe(document["first_t"], document["first_count"])
    progress.observe(document["last_t"], document["last_count"])
    return line(
        "naive_faust",
        count,
        progress.seconds,
        progress.rate,
        unit="events/s",
        seconds_from_start=round(progress.since_start, 3),
    )


def _wait_for_result(process: Any, result: Any, deadline: float, log: Any) -> dict[str, Any]:
    while time.monotonic() < deadline:
        if result.exists():
            return dict(orjson.loads(result.read_bytes()))
        if process.poll() is not None:
            raise RuntimeError(f"naive agent exited with {process.returncode}:\n{tail(log)}")
        time.sleep(0.1)
    raise TimeoutError(f"naive agent did not finish in time:\n{tail(log)}")
