"""Memory per tracked customer in the pure engine, measured as RSS growth in a fresh process.

``python -m bench.engine_memory HISTORY TARGET TIMELINES DUMP`` ingests the JSON Lines
HISTORY into one ``Engine`` until it tracks TARGET customers, prints one JSON object
(RSS before and after, customers, contacts, ingest rate), then writes the first DUMP
customers' changelog values to TIMELINES for the recovery scenario. A child process keeps
the generator's and the harness's own memory out of the measurement.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from bench.progress import line
from bench.services import rss_bytes
from stream.engine import Engine, EngineConfig, Rejection, decode_contact

CHECK_EVERY = 2_000  # the worker takes changes per batch of up to 2,000 events


def ingest_until(engine: Engine, history: Path, target: int) -> int:
    """Feed ``history`` to ``engine`` until it tracks ``target`` customers; events read."""
    events = 0
    with history.open("rb") as source:
        for events, raw in enumerate(source, start=1):
            decoded = decode_contact(raw)
            if not isinstance(decoded, Rejection):
                engine.ingest(decoded)
            if events % CHECK_EVERY == 0:
                engine.take_changed()
                if len(engine.customers) >= target:
                    break
    engine.take_changed()
    return events


def measure(history: Path, target: int) -> tuple[Engine, dict[str, Any]]:
    gc.collect()
    before = rss_bytes()
    engine = Engine(EngineConfig(), now_ms=int(time.time() * 1000))
    began = time.perf_counter()
    events = ingest_until(engine, history, target)
    seconds = time.perf_counter() - began
    gc.collect()
    after = rss_bytes()
    customers = len(engine.customers)
    contacts = sum(len(timeline.contacts) for timeline in engine.customers.values())
    return engine, {
        "events": events,
        "seconds": seconds,
        "customers": customers,
        "contacts": contacts,
        "rss_before": before,
        "rss_after": after,
    }


def dump(engine: Engine, path: Path, limit: int) -> None:
    with path.open("wb") as out:
        for count, (customer_id, timeline) in enumerate(engine.customers.items()):
            if count >= limit:
                break
            out.write(customer_id.encode() + b"\t" + timeline.to_bytes() + b"\n")


def child(argv: list[str]) -> None:
    history, target, timelines, limit = Path(argv[0]), int(argv[1]), Path(argv[2]), int(argv[3])
    engine, figures = measure(history, target)
    sys.stdout.write(orjson.dumps(figures).decode() + "\n")
    sys.stdout.flush()
    dump(engine, timelines, limit)


def memory(
    history: Path, target: int, timelines: Path, dump_limit: int, timeout_s: float
) -> dict[str, Any]:
    """Run the child and turn its figures into the ``memory`` line."""
    args = [sys.executable, "-m", "bench.engine_memory", str(history), str(target)]
    done = subprocess.run(
        [*args, str(timelines), str(dump_limit)],
        capture_output=True,
        timeout=timeout_s,
        check=True,
    )
    figures = orjson.loads(done.stdout.splitlines()[0])
    growth = figures["rss_after"] - figures["rss_before"]
    customers = max(figures["customers"], 1)
    return line(
        "memory",
        figures["events"],
        figures["seconds"],
        figures["events"] / max(figures["seconds"], 1e-9),
        unit="events/s ingested by the pure engine (decode + ingest)",
        customers=figures["customers"],
        contacts=figures["contacts"],
        rss_growth_mb=round(growth / 2**20, 1),
        bytes_per_customer=round(growth / customers, 1),
        bytes_per_contact=round(growth / max(figures["contacts"], 1), 1),
        target_bytes_per_customer=150,
    )


if __name__ == "__main__":
    child(sys.argv[1:])
