"""What a count denominator costs a worker: ``python -m bench.denominator_counts [RECORDS]``.

Decodes and counts RECORDS order records (default 1,000,000) spread over the last 60 days
into one ``EventCounts`` (the windows of the defaults), the way a worker reads a count
topic at start: four partitions, each a contiguous run of the topic in time order, read
in turns of 5,000 records (so the event times arrive interleaved, not sorted). Prints one
JSON line: decode + count rate, RSS growth per distinct millisecond held, and the cost of
a one-second clock step (what each read loop and scrape pays) and of a month rollover.
"""

from __future__ import annotations

import gc
import random
import sys
import time

import orjson

from bench.progress import line
from bench.services import rss_bytes
from stream.engine.denominators import EventCounts, decode_count_record
from stream.settings import load_settings

DAY_MS = 86_400_000
PARTITIONS = 4
TURN = 5_000


def records(count: int, now_ms: int) -> list[bytes]:
    rnd = random.Random(7)
    times = sorted(now_ms - rnd.randrange(60 * DAY_MS) for _ in range(count))
    values = [
        orjson.dumps({"order_id": f"o{n}", "timestamp": t, "count": rnd.choice([1, 1, 2])})
        for n, t in enumerate(times)
    ]
    # Partition p holds the p-th quarter of the topic's time range: read in turns.
    size = -(-count // PARTITIONS)
    parts = [values[p * size : (p + 1) * size] for p in range(PARTITIONS)]
    interleaved = []
    for start in range(0, size, TURN):
        for part in parts:
            interleaved += part[start : start + TURN]
    return interleaved


def main(count: int) -> dict[str, object]:
    settings = load_settings()
    now = int(time.time() * 1000)
    values = records(count, now)
    gc.collect()
    before = rss_bytes()
    counts = EventCounts(settings.window_ms, now, settings.timezone, settings.max_clock_skew_ms)
    began = time.perf_counter()
    for value in values:
        record = decode_count_record(value, None)
        assert record is not None
        counts.add(record)
    seconds = time.perf_counter() - began
    gc.collect()
    held = len(counts.counts)
    growth = rss_bytes() - before
    steps = 200
    step_began = time.perf_counter()
    for n in range(1, steps + 1):
        counts.advance(now + n * 1000)
    step_s = (time.perf_counter() - step_began) / steps
    month_began = time.perf_counter()
    counts.advance(now + 31 * DAY_MS)
    month_s = time.perf_counter() - month_began
    return line(
        "denominator_counts",
        count,
        seconds,
        count / seconds,
        milliseconds_held=held,
        rss_growth=growth,
        bytes_per_millisecond_held=growth / held,
        one_second_step_ms=step_s * 1000,
        month_jump_ms=month_s * 1000,
    )


if __name__ == "__main__":
    print(orjson.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)).decode())
