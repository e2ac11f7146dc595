"""A naive Faust agent (one event per iteration, one table write per event), run as a child.

``python -m bench.naive_agent BROKER_URL TOPIC APP_ID DATADIR TARGET RESULT_FILE``: counts
contacts per customer in a changelog-backed table and, after TARGET events, writes
``{"first_t", "first_count", "last_t", "last_count"}`` (monotonic clock, shared by every
process on Linux) to RESULT_FILE. The parent then stops it. This is the reference point of
issue 4 (2.4k-3.7k events/s measured earlier on this machine).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import faust
import orjson


def make_app(broker: str, app_id: str, datadir: str) -> faust.App:
    return faust.App(
        app_id,
        broker=broker,
        store="memory://",
        datadir=datadir,
        web_enabled=False,
        topic_partitions=4,
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=3.0,
        broker_heartbeat_interval=0.5,
        broker_request_timeout=30.0,
        broker_commit_interval=1.0,
        table_standby_replicas=0,
    )


def main(argv: list[str]) -> None:
    broker, topic_name, app_id, datadir, target_text, result = argv
    target = int(target_text)
    app = make_app(broker, app_id, datadir)
    topic = app.topic(topic_name, key_type=bytes, value_type=bytes, value_serializer="raw")
    counts = app.Table("counts", default=int, partitions=4)
    state = {"count": 0, "first_t": 0.0}

    @app.agent(topic)
    async def count(stream: faust.StreamT) -> None:
        async for value in stream:
            event = orjson.loads(value)
            counts[event["customer_id"]] += 1
            state["count"] += 1
            if state["count"] == 1:
                state["first_t"] = time.monotonic()
            elif state["count"] == target:
                _write(result, state["first_t"], time.monotonic(), target)

    faust.Worker(app, loglevel="WARNING", quiet=True).execute_from_commandline()


def _write(path: str, first_t: float, last_t: float, count: int) -> None:
    document = {"first_t": first_t, "first_count": 1, "last_t": last_t, "last_count": count}
    partial = Path(path + ".part")
    partial.write_bytes(orjson.dumps(document))
    partial.rename(path)


if __name__ == "__main__":
    main(sys.argv[1:])
