"""simulate and replay against the embedded broker: consume back, check counts, keys, order."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from click.testing import CliRunner

from stream.cli.replay import replay
from stream.cli.simulate import simulate
from stream.embedded import EmbeddedBroker
from stream.simulate import SimConfig, generate
from stream.simulate.runner import run_simulation
from tests.datasets import TWCS, TWCS_REPLAY_ARGS

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def unique(prefix: str) -> str:
    """A topic no other test uses (the broker is shared by the session)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def consume(bootstrap: str, topic: str, expected: int, timeout: float = 30.0) -> list[Any]:
    """Every record of ``topic`` once ``expected`` arrived, plus a short wait for extras."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        quiet_until = None
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for messages in batch.values():
                records.extend(messages)
            if len(records) >= expected:
                quiet_until = quiet_until or time.monotonic() + 1.0
                if time.monotonic() >= quiet_until:
                    break
    finally:
        await consumer.stop()
    return records


def _epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp).timestamp()


def check_keys_and_order(records: list[Any]) -> dict[int, list[dict]]:
    """Every key is its value's customer, one partition per customer, event-time order."""
    per_partition: dict[int, list[dict]] = defaultdict(list)
    partition_of: dict[bytes, int] = {}
    for record in records:
        event = orjson.loads(record.value)
        assert record.key == event["customer_id"].encode()
        assert partition_of.setdefault(record.key, record.partition) == record.partition
        per_partition[record.partition].append(event)
    for events in per_partition.values():
        times = [_epoch(e["timestamp"]) for e in events]
        assert times == sorted(times)
    return per_partition


def test_accelerated_simulation_lands_complete_keyed_and_ordered(broker: EmbeddedBroker) -> None:
    topic = unique("sim")
    config = SimConfig(rate=5, customers=2_000, seed=11, scenario="launch", launch_at_s=300)
    start = time.time() - 3600

    async def run() -> Any:
        report = await run_simulation(
            config,
            bootstrap_servers=broker.bootstrap,
            topic=topic,
            start=start,
            duration_s=900,
            partitions=4,
        )
        return report, await consume(broker.bootstrap, topic, report.sent)

    report, records = asyncio.run(run())
    expected = list(generate(config, start, until=start + 900))
    assert report.sent == len(expected) == len(records)
    assert report.elapsed_s < 20  # accelerated: 15 minutes of traffic in seconds
    assert {orjson.loads(r.value)["contact_id"] for r in records} == {
        c.event["contact_id"] for c in expected
    }
    assert len(check_keys_and_order(records)) == 4


def test_live_simulation_paces_at_the_rate_and_stops_cleanly(broker: EmbeddedBroker) -> None:
    topic = unique("live")
    config = SimConfig(rate=200, customers=5_000, seed=12, diurnal_amplitude=0.0)

    async def run() -> Any:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(2.0, stop.set)
        began = time.time()
        report = await run_simulation(
            config, bootstrap_servers=broker.bootstrap, topic=topic, stop=stop, partitions=2
        )
        return began, report, await consume(broker.bootstrap, topic, report.sent)

    began, report, records = asyncio.run(run())
    assert report.stopped
    assert len(records) == report.sent
    assert 250 < report.sent < 550  # ~400 at 200/s over 2s (Poisson)
    times = [orjson.loads(r.value)["timestamp"] for r in records]
    lag = [r.timestamp / 1000 - _epoch(t) for r, t in zip(records, times, strict=True)]
    assert all(-0.05 < x < 1.0 for x in lag)  # sent when due: event time ~ wall clock
    assert min(_epoch(t) for t in times) >= began - 0.01
    check_keys_and_order(records)


def test_simulate_command_prints_a_summary(broker: EmbeddedBroker) -> None:
    topic = unique("simcli")
    args = [
        "--broker",
        broker.url,
        "--topic",
        topic,
        "--rate",
        "3",
        "--duration",
        "10m",
        "--start",
        "2h",
        "--seed",
        "5",
        "--customers",
        "1000",
    ]
    result = CliRunner().invoke(simulate, args)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("simulate done: ") and "seed 5" in result.output
    sent = int(result.output.split(": ")[1].split(" events")[0])
    assert len(asyncio.run(consume(broker.bootstrap, topic, sent))) == sent


def test_replay_twcs_excerpt_with_one_command_line(broker: EmbeddedBroker) -> None:
    topic = unique("twcs")
    args = [
        str(TWCS),
        "--broker",
        broker.url,
        "--topic",
        topic,
        *TWCS_REPLAY_ARGS,
    ]
    result = CliRunner().invoke(replay, args)
    assert result.exit_code == 0, result.output
    assert "sent 2778 events for 1443 customers" in result.output
    records = asyncio.run(consume(broker.bootstrap, topic, 2_778))
    assert len(records) == 2_778
    assert len({r.key for r in records}) == 1_443
    per_partition = check_keys_and_order(records)
    for events in per_partition.values():
        for event in events:
            assert set(event) == {"contact_id", "customer_id", "timestamp", "channel"}


def test_replay_paced_takes_event_time_over_speed(broker: EmbeddedBroker, tmp_path: Path) -> None:
    topic = unique("paced")
    path = tmp_path / "events.jsonl"
    lines = [
        orjson.dumps(
            {"contact_id": f"k{i}", "customer_id": f"c{i % 3}", "timestamp": 1_700_000_000 + 30 * i}
        )
        for i in range(5)
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    began = time.monotonic()
    result = CliRunner().invoke(
        replay, [str(path), "--broker", broker.url, "--topic", topic, "--speed", "60x"]
    )
    elapsed = time.monotonic() - began
    assert result.exit_code == 0, result.output
    assert 2.0 <= elapsed < 10  # two minutes of event time at 60x
    records = asyncio.run(consume(broker.bootstrap, topic, 5))
    assert sorted(orjson.loads(r.value)["contact_id"] for r in records) == [
        f"k{i}" for i in range(5)
    ]
    check_keys_and_order(records)
