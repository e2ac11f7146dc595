"""Simulated traffic for the benchmarks: the project's own generator, keyed and serialised.

Everything is generated before any clock starts, so generation cost never counts as
consumer, worker or engine time.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import orjson

from stream.engine import CustomerTimeline
from stream.producing import KeyedProducer, ensure_topic
from stream.simulate import SimConfig, default_customers, generate, generate_events

Record = tuple[str, bytes]  # (key, value)

DAY_S = 86_400.0
PARTITIONS = 4
# A 30-day history with about one tracked customer per EVENTS_PER_CUSTOMER / 2.8 events:
# a Zipf population six times the tracked customers gives ~1.1 distinct per 2.8 events.
POPULATION_PER_CUSTOMER = 6
EVENTS_PER_CUSTOMER = 2.8


def backlog_records(count: int, span_s: float = 2 * DAY_S, seed: int = 4) -> list[Record]:
    """``count`` contacts of the last ``span_s`` seconds with a launch spike at 70% of it."""
    rate = count / span_s
    config = SimConfig(
        rate=rate,
        customers=default_customers(rate),
        seed=seed,
        scenario="launch",
        launch_at_s=0.7 * span_s,
    )
    start = time.time() - span_s - 60.0
    return [_record(event) for event in generate_events(config, start, limit=count)]


def live_contacts(rate: float, seconds: float, seed: int = 7) -> list[tuple[float, Record]]:
    """Steady traffic at ``rate``/s for ``seconds``: (offset from start in s, record).

    No diurnal curve: the rate asked for is the rate produced, whatever the time of day."""
    config = SimConfig(
        rate=rate, customers=default_customers(rate), seed=seed, diurnal_amplitude=0.0
    )
    start = time.time()
    return [
        (contact.at - start, _record(contact.event))
        for contact in generate(config, start, until=start + seconds)
    ]


def write_history(path: Path, customers: int, min_lines: int, seed: int = 30) -> int:
    """A 30-day JSON Lines history sized for ``customers`` tracked customers; lines written."""
    lines = max(min_lines, int(customers * EVENTS_PER_CUSTOMER))
    span_s = 30 * DAY_S
    config = SimConfig(
        rate=lines / span_s, customers=customers * POPULATION_PER_CUSTOMER, seed=seed
    )
    start = time.time() - span_s
    with path.open("wb") as out:
        for event in generate_events(config, start, limit=lines):
            out.write(orjson.dumps(event) + b"\n")
    return lines


def head(source: Path, target: Path, lines: int) -> int:
    """The first ``lines`` lines of ``source`` into ``target``; lines copied."""
    copied = 0
    with source.open("rb") as src, target.open("wb") as out:
        for line in src:
            if copied >= lines:
                break
            out.write(line)
            copied += 1
    return copied


def _record(event: dict[str, object]) -> Record:
    return str(event["customer_id"]), orjson.dumps(event)


async def create_topic(bootstrap: str, topic: str, partitions: int = PARTITIONS) -> None:
    await ensure_topic(bootstrap, topic, partitions)


async def produce(bootstrap: str, topic: str, records: Iterable[Record]) -> float:
    """Send every record keyed (murmur2, like any Kafka producer); returns seconds taken."""
    began = time.perf_counter()
    async with KeyedProducer(bootstrap, topic, client_id="rcr-bench", acks=1) as producer:
        for key, value in records:
            await producer.send(key, value)
    return time.perf_counter() - began


def recent_customers(path: Path, limit: int, window_ms: int) -> int:
    """How many of the first ``limit`` timelines have a contact in the last ``window_ms``:
    what ``rcr_customers{window="30d"}`` must show once they are recovered."""
    since = int(time.time() * 1000) - window_ms
    return sum(
        1
        for _, value in read_timelines(path, limit)
        if any(contact[0] >= since for contact in CustomerTimeline.from_bytes(value).contacts)
    )


def read_timelines(path: Path, limit: int) -> Iterator[Record]:
    """(customer_id, changelog value) pairs written by :mod:`bench.engine_memory`."""
    with path.open("rb") as source:
        for count, line in enumerate(source):
            if count >= limit:
                return
            key, _, value = line.rstrip(b"\n").partition(b"\t")
            yield key.decode(), value
