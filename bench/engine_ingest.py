"""The pure engine's per-event cost, without broker, Redis or Faust: CPU time per event.

``python -m bench.engine_ingest`` prints one JSON line per stream:

- ``live``: a 2-day backlog (the worker scenario's load) is ingested first, then a live
  stream at 2,000 events/s is timed; now moves with every event.
- ``steady``: 8 hours at 8 events/s with the wall clock following the events; the second
  half is timed, so contacts leave the 1h window as fast as they arrive.

CPU time (``time.process_time``), not wall time: the machine is shared. To compare with
another version of the engine in the same session, run this file as a script with that
checkout first on the path: ``PYTHONPATH=<checkout>:. python bench/engine_ingest.py``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import orjson

from bench.load import backlog_records, live_contacts
from stream.engine import ContactEvent, Engine, EngineConfig, Rejection, decode_contact

DIMENSIONS = ("queue",)  # the worker's default
TAKE_EVERY = 2_000  # the worker takes changes per batch of up to 2,000 events


def decoded(values: list[bytes]) -> list[ContactEvent]:
    events = (decode_contact(value, 1 << 20, DIMENSIONS) for value in values)
    return [event for event in events if not isinstance(event, Rejection)]


def feed(engine: Engine, events: list[ContactEvent], clock: bool) -> None:
    for count, event in enumerate(events, start=1):
        if clock:
            engine.advance(event.timestamp_ms)
        engine.ingest(event)
        if count % TAKE_EVERY == 0:
            engine.take_changed()


def timed(warm_up: list[ContactEvent], measured: list[ContactEvent], clock: bool) -> float:
    engine = Engine(EngineConfig(dimensions=DIMENSIONS), now_ms=int(time.time() * 1000))
    feed(engine, warm_up, clock)
    began = time.process_time()
    feed(engine, measured, clock)
    return time.process_time() - began


def live(events: int) -> tuple[list[ContactEvent], list[ContactEvent], bool]:
    backlog = decoded([value for _, value in backlog_records(events)])
    stream = decoded([value for _, (_, value) in live_contacts(2_000, events / 2_000)])
    return backlog, stream, False


def steady(events: int) -> tuple[list[ContactEvent], list[ContactEvent], bool]:
    rate = 8
    stream = decoded([value for _, (_, value) in live_contacts(rate, 2 * events / rate)])
    half = len(stream) // 2
    return stream[:half], stream[half:], True


STREAMS: dict[str, Callable[[int], tuple[list[ContactEvent], list[ContactEvent], bool]]] = {
    "live": live,
    "steady": steady,
}


def compiled() -> bool:
    try:
        from stream.native import is_compiled
    except ImportError:  # a version from before the compiled engine
        return False
    return is_compiled()


def main(events: int = 100_000) -> None:
    for name, make in STREAMS.items():
        warm_up, measured, clock = make(events)
        seconds = timed(warm_up, measured, clock)
        line = {
            "stream": name,
            "events": len(measured),
            "cpu_seconds": round(seconds, 3),
            "us_per_event": round(seconds / len(measured) * 1e6, 1),
            "compiled": compiled(),
        }
        sys.stdout.write(orjson.dumps(line).decode() + "\n")


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:2]))
