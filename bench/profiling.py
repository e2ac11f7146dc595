"""py-spy on the worker under load, aggregated into shares of the sampled CPU time.

``py-spy record -p PID -d SECONDS -f raw -o FILE`` writes collapsed stacks (one line per
distinct stack: ``outer;...;leaf count``); only active (non-idle) samples are recorded, so
shares are of the time the worker spent running Python.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.progress import line

TOP = 15
_LINE_NUMBER = re.compile(r":\d+\)$")
# First match wins: where a leaf frame's code lives.
AREAS = (
    ("stream/engine/", "stream.engine"),
    ("stream/app/", "stream.app"),
    ("stream/sinks/", "stream.sinks"),
    ("stream/metrics/", "stream.metrics"),
    ("stream/", "stream (other)"),
    ("faust/", "faust"),
    ("mode/", "mode"),
    ("aiokafka/", "aiokafka"),
    ("kafka/", "kafka-python (vendored)"),
    ("asyncio/", "asyncio"),
    ("redis/", "redis"),
    ("prometheus_client/", "prometheus_client"),
    ("aiohttp/", "aiohttp"),
    ("logging/", "logging"),
    ("(selectors.py)", "epoll wait (selectors)"),
)
# Frames in nearly every sample (event loop, CLI entry points) say nothing in the inclusive list.
ROOT_SHARE = 0.9


def py_spy() -> str:
    beside = Path(sys.executable).parent / "py-spy"
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if not found:
        raise FileNotFoundError("py-spy is not installed (pip install py-spy)")
    return found


@dataclass
class Profiler:
    process: subprocess.Popen[bytes]
    output: Path
    seconds: int

    @classmethod
    def start(cls, pid: int, seconds: int, output: Path) -> Profiler:
        args = [py_spy(), "record", "-p", str(pid), "-d", str(seconds), "-f", "raw"]
        process = subprocess.Popen(
            [*args, "-o", str(output)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        return cls(process, output, seconds)

    def finish(self) -> dict[str, Any]:
        """Wait for py-spy (bounded), then aggregate its output into the ``profile`` line."""
        try:
            _, error = self.process.communicate(timeout=self.seconds + 30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, error = self.process.communicate(timeout=10)
        if not self.output.exists():
            message = error.decode(errors="replace").strip()[-500:]
            return line("profile", 0, self.seconds, 0.0, error=f"py-spy failed: {message}")
        return summarise(read_stacks(self.output), self.seconds, self.output)


def read_stacks(path: Path) -> Counter[tuple[str, ...]]:
    stacks: Counter[tuple[str, ...]] = Counter()
    for raw in path.read_text(errors="replace").splitlines():
        frames, _, count = raw.rpartition(" ")
        if frames and count.isdigit():
            names = tuple(_LINE_NUMBER.sub(")", frame) for frame in frames.split(";"))
            stacks[names] += int(count)
    return stacks


def area(frame: str) -> str:
    for fragment, name in AREAS:
        if fragment in frame:
            return name
    return "other"


def summarise(stacks: Counter[tuple[str, ...]], seconds: float, path: Path) -> dict[str, Any]:
    total = sum(stacks.values())
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    for frames, count in stacks.items():
        own[frames[-1]] += count
        areas[area(frames[-1])] += count
        for frame in set(frames):
            inclusive[frame] += count
    return line(
        "profile",
        total,
        seconds,
        total / max(seconds, 1e-9),
        unit="samples/s (py-spy, active samples only)",
        raw_file=str(path),
        self_by_area=_shares(areas, total, len(areas)),
        top_self=_shares(own, total, TOP),
        top_inclusive=_shares(_below_roots(inclusive, total), total, TOP),
    )


def _below_roots(inclusive: Counter[str], total: int) -> Counter[str]:
    return Counter({k: v for k, v in inclusive.items() if v < ROOT_SHARE * total})


def _shares(counter: Counter[str], total: int, top: int) -> list[list[Any]]:
    return [[name, round(count / total, 4)] for name, count in counter.most_common(top)]


def main(argv: list[str]) -> None:
    """``python -m bench.profiling RAW_FILE [SECONDS]``: aggregate an existing recording."""
    import orjson

    seconds = float(argv[1]) if len(argv) > 1 else 0.0
    path = Path(argv[0])
    sys.stdout.write(orjson.dumps(summarise(read_stacks(path), seconds, path)).decode() + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
