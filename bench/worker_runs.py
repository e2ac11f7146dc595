"""The real worker (``python -m stream worker``): throughput, freshness and recovery."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.profiling import Profiler
from bench.progress import Progress, line
from bench.services import (
    Stack,
    WorkerProcess,
    cpu_seconds,
    rss_bytes,
    running_worker,
    tail,
)

READY_TIMEOUT_S = 120.0
POLL_S = 0.5  # each /metrics scrape costs the worker ~15 ms of CPU


@dataclass
class Drain:
    """What a worker did with a pre-produced backlog."""

    progress: Progress
    rss: int
    # The worker's CPU seconds from its first counted event to the last poll: per event,
    # the figure that a busy shared machine distorts least (wall rates swing with it).
    cpu_s: float = 0.0
    profile: dict[str, Any] | None = field(default=None)


@dataclass(frozen=True)
class ProfileRequest:
    seconds: int
    output: Path


def worker_throughput(
    stack: Stack, count: int, timeout_s: float, profile: ProfileRequest | None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Start a worker on a topic already holding ``count`` events; time until all counted.

    With ``profile``, py-spy records the worker from its first counted event on."""
    with running_worker(stack) as worker:
        drain = _drain(worker, count, timeout_s, profile)
    progress = drain.progress
    result = line(
        "worker",
        progress.last_count,
        progress.seconds,
        progress.rate,
        unit="events/s",
        complete=progress.last_count >= count,
        seconds_from_start=round(progress.since_start, 3),
        worker_rss_mb=round(drain.rss / 2**20, 1),
        worker_cpu_us_per_event=_per_event_us(drain.cpu_s, progress),
    )
    return result, drain.profile


def _per_event_us(cpu_s: float, progress: Progress) -> float | None:
    counted = progress.last_count - progress.first_count
    return round(cpu_s / counted * 1e6, 1) if counted > 0 else None


def _drain(
    worker: WorkerProcess, count: int, timeout_s: float, profile: ProfileRequest | None
) -> Drain:
    progress = Progress(started=worker.started)
    deadline = worker.started + timeout_s
    profiler: Profiler | None = None
    cpu_at_first: float | None = None
    cpu_at_last = 0.0
    while progress.last_count < count and time.monotonic() < deadline:
        worker.check_alive()
        progress.observe(time.monotonic(), _events_total(worker))
        if progress.last_count > 0:  # CPU read beside each observation the rate uses
            cpu_at_last = cpu_seconds(worker.pid)
            if cpu_at_first is None:
                cpu_at_first = cpu_at_last
        if profile is not None and profiler is None and progress.last_count > 0:
            profiler = Profiler.start(worker.pid, profile.seconds, profile.output)
        time.sleep(POLL_S)
    cpu_s = cpu_at_last - cpu_at_first if cpu_at_first is not None else 0.0
    rss = rss_bytes(worker.pid)
    summary = profiler.finish() if profiler is not None else None
    if progress.last_count < count:  # the log goes with the run's scratch directory
        sys.stderr.write(f"bench: the worker stopped short, its log ends:\n{tail(worker.log)}\n")
    return Drain(progress, rss, cpu_s, summary)


def _events_total(worker: WorkerProcess) -> float:
    try:
        return worker.events_total()
    except OSError:
        return 0.0  # the web server is not up yet


def recovery(stack: Stack, customers: int, timeout_s: float) -> dict[str, Any]:
    """Time from process start to /readyz 200 with ``customers`` timelines in the changelog
    (produced by the caller)."""
    with running_worker(stack) as worker:
        seconds = worker.wait_ready(timeout_s)
        rss = rss_bytes(worker.pid)
        restored = _customers_30d(worker)
    return line(
        "recovery",
        customers,
        seconds,
        customers / max(seconds, 1e-9),
        unit="customers/s restored (start to /readyz 200)",
        customers=customers,
        customers_30d_after=restored,
        worker_rss_mb=round(rss / 2**20, 1),
        target_seconds=30,
    )


def empty_start(stack: Stack) -> tuple[float, int]:
    """Start-to-ready seconds and RSS of a worker with nothing to recover."""
    with running_worker(stack) as worker:
        seconds = worker.wait_ready(READY_TIMEOUT_S)
        return seconds, rss_bytes(worker.pid)


def _customers_30d(worker: WorkerProcess) -> int:
    wanted = {"window": "30d", "channel": "all", "reason": "all"}.items()
    for labels, value in worker.samples().get("rcr_customers", []):
        if wanted <= labels.items():  # whatever other labels (definition) it carries
            return int(value)
    return -1
