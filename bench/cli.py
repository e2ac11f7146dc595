"""Run the scenarios in order and print one JSON line each (see bench/__init__.py)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bench import load
from bench.compute_run import compute
from bench.consumers import naive_faust, raw_consumer
from bench.engine_memory import memory
from bench.freshness import freshness
from bench.progress import ratio
from bench.services import Services, services
from bench.sizes import FULL, QUICK, Sizes
from bench.worker_runs import ProfileRequest, empty_start, recovery, worker_throughput

SCENARIOS = ("raw_consumer", "naive_faust", "worker", "freshness", "memory", "recovery", "compute")
TARGET_RATE = 100_000
TARGET_VS_RAW = 0.25
MILESTONE_VS_NAIVE = 10.0
THIRTY_DAYS_MS = 30 * 86_400_000

Line = dict[str, Any]


def note(message: str) -> None:
    """Progress for people, on stderr: stdout carries only the JSON lines."""
    sys.stderr.write(f"bench: {message}\n")
    sys.stderr.flush()


@dataclasses.dataclass
class Run:
    services: Services
    sizes: Sizes
    quick: bool
    profile: ProfileRequest | None
    baseline: Path | None = None  # another checkout whose worker runs right after ours
    results: dict[str, Line] = dataclasses.field(default_factory=dict)
    _backlog: str | None = None
    _history: Path | None = None
    _timelines: Path | None = None

    @property
    def bootstrap(self) -> str:
        return self.services.broker.bootstrap

    # -- shared inputs, made once and only when a selected scenario needs them ------------

    def backlog(self) -> str:
        """The pre-produced topic that raw_consumer, naive_faust and worker all read."""
        if self._backlog is None:
            count = self.sizes.stream_events
            note(f"generating {count:,} events (launch scenario, last 2 days)")
            records = load.backlog_records(count)
            topic = self.services.stack().topic
            asyncio.run(load.create_topic(self.bootstrap, topic))
            seconds = asyncio.run(load.produce(self.bootstrap, topic, records))
            note(f"produced {count:,} events to {topic} in {seconds:.1f}s")
            self._backlog = topic
        return self._backlog

    def history(self) -> Path:
        """A 30-day JSON Lines history for memory, recovery and compute."""
        if self._history is None:
            sizes = self.sizes
            path = self.services.tmp / "history.jsonl"
            customers = max(sizes.memory_customers, sizes.recovery_customers)
            note(f"generating a 30-day history for {customers:,} customers")
            lines = load.write_history(path, customers, sizes.compute_lines)
            note(f"wrote {lines:,} lines to {path}")
            self._history = path
        return self._history

    def timelines(self) -> Path:
        """Changelog values for recovery: written by the memory scenario's engine."""
        if self._timelines is None:
            self.results["memory"] = self._memory()
        assert self._timelines is not None
        return self._timelines

    # -- scenarios --------------------------------------------------------------------------

    def raw_consumer(self) -> list[Line]:
        topic, count = self.backlog(), self.sizes.stream_events
        return [asyncio.run(raw_consumer(self.bootstrap, topic, count, timeout_s=120.0))]

    def naive_faust(self) -> list[Line]:
        topic, sizes = self.backlog(), self.sizes
        return [naive_faust(self.services, topic, sizes.naive_events, sizes.worker_timeout_s)]

    def worker(self) -> list[Line]:
        stack = self.services.stack(source_topic=self.backlog())
        sizes = self.sizes
        result, profile = worker_throughput(
            stack, sizes.stream_events, sizes.worker_timeout_s, self.profile
        )
        result.update(self._worker_ratios(result["rate"]))
        lines = [result] if profile is None else [result, profile]
        if self.baseline is not None:
            lines.append(self._baseline_worker(result["rate"]))
        return lines

    def _baseline_worker(self, rate: float) -> Line:
        """The baseline checkout's worker on the same backlog, right after ours."""
        note(f"the baseline worker ({self.baseline}) on the same backlog")
        stack = self.services.stack(source_topic=self.backlog(), code=self.baseline)
        sizes = self.sizes
        result, _ = worker_throughput(stack, sizes.stream_events, sizes.worker_timeout_s, None)
        result.update(self._worker_ratios(result["rate"]))
        result["scenario"] = "worker_baseline"
        result["code"] = str(self.baseline)
        result["worker_vs_baseline"] = ratio(rate, result["rate"])
        return result

    def _worker_ratios(self, rate: float) -> Line:
        raw = self.results.get("raw_consumer", {}).get("rate", 0.0)
        naive = self.results.get("naive_faust", {}).get("rate", 0.0)
        return {
            "vs_raw_consumer": ratio(rate, raw),
            "vs_naive_faust": ratio(rate, naive),
            "target_rate": TARGET_RATE,
            "target_vs_raw_consumer": TARGET_VS_RAW,
            "milestone_vs_naive_faust": MILESTONE_VS_NAIVE,
        }

    def freshness(self) -> list[Line]:
        sizes, lines = self.sizes, []
        for rate in sizes.freshness_rates:
            note(f"freshness at {rate:,} events/s for {sizes.freshness_seconds:.0f}s")
            args = (rate, sizes.freshness_seconds, sizes.freshness_markers_per_s)
            lines.append(freshness(self.services.stack(), *args, sizes.freshness_drain_s))
        return lines

    def memory(self) -> list[Line]:
        if "memory" not in self.results:
            self.results["memory"] = self._memory()
        return [self.results["memory"]]

    def _memory(self) -> Line:
        history, sizes = self.history(), self.sizes
        timelines = self.services.tmp / "timelines.tsv"
        note(f"engine memory with {sizes.memory_customers:,} customers")
        timeout = 300.0 if self.quick else 3_600.0
        result = memory(
            history, sizes.memory_customers, timelines, sizes.recovery_customers, timeout
        )
        self._timelines = timelines
        return result

    def recovery(self) -> list[Line]:
        customers, timelines = self.sizes.recovery_customers, self.timelines()
        empty_seconds, empty_rss = empty_start(self.services.stack())
        stack = self.services.stack()
        asyncio.run(load.create_topic(self.bootstrap, stack.topic))
        asyncio.run(load.create_topic(self.bootstrap, stack.changelog_topic))
        records = load.read_timelines(timelines, customers)
        seconds = asyncio.run(load.produce(self.bootstrap, stack.changelog_topic, records))
        note(f"wrote {customers:,} timelines to {stack.changelog_topic} in {seconds:.1f}s")
        result = recovery(stack, customers, self.sizes.recovery_timeout_s)
        result["customers_30d_expected"] = load.recent_customers(
            timelines, customers, THIRTY_DAYS_MS
        )
        result["empty_table_ready_seconds"] = round(empty_seconds, 3)
        result["empty_table_rss_mb"] = round(empty_rss / 2**20, 1)
        return [result]

    def compute(self) -> list[Line]:
        path = self.services.tmp / "compute.jsonl"
        lines = load.head(self.history(), path, self.sizes.compute_lines)
        return [compute(path, lines, timeout_s=600.0)]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (CI smoke test)")
    parser.add_argument(
        "--only", default=",".join(SCENARIOS), help=f"comma-separated subset of {SCENARIOS}"
    )
    parser.add_argument(
        "--profile",
        nargs="?",
        const="",
        default=None,
        metavar="FILE",
        help="py-spy the worker scenario; raw stacks to FILE (default: a file in /tmp)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="DIR",
        help="after the worker scenario, run the worker of the checkout in DIR (e.g. `git"
        " worktree add DIR main`) on the same backlog: worker_baseline, worker_vs_baseline",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a size, e.g. --set recovery_customers=500000",
    )
    return parser.parse_args(argv)


def sizes_from(args: argparse.Namespace) -> Sizes:
    sizes = QUICK if args.quick else FULL
    for item in args.set:
        name, _, value = item.partition("=")
        current = getattr(sizes, name)
        if isinstance(current, tuple):
            parsed: Any = tuple(int(v) for v in value.split(","))
        else:
            parsed = type(current)(value)
        sizes = dataclasses.replace(sizes, **{name: parsed})
    return sizes


def profile_request(args: argparse.Namespace, sizes: Sizes) -> ProfileRequest | None:
    if args.profile is None:
        return None
    path = args.profile or f"/tmp/rcr-bench-worker-{time.strftime('%Y%m%dT%H%M%S')}.pyspy.txt"
    return ProfileRequest(sizes.profile_seconds, Path(path))


def run_scenarios(run: Run, selected: list[str], emit: Callable[[Line], None]) -> bool:
    """Every selected scenario in the canonical order; a failure is a line, not an abort."""
    ok = True
    for name in (s for s in SCENARIOS if s in selected):
        began = time.monotonic()
        try:
            lines = getattr(run, name)()
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            lines, ok = [{"scenario": name, "error": f"{type(exc).__name__}: {exc}"}], False
        for result in lines:
            run.results.setdefault(str(result["scenario"]), result)
            emit(result)
        note(f"{name} took {time.monotonic() - began:.1f}s")
    return ok


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    selected = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(selected) - set(SCENARIOS))
    if unknown:
        sys.stderr.write(f"unknown scenarios {unknown}; choose from {SCENARIOS}\n")
        return 2
    sizes = sizes_from(args)
    began = time.monotonic()
    with services() as started:
        run = Run(started, sizes, args.quick, profile_request(args, sizes), args.baseline)
        ok = run_scenarios(run, selected, _print_line)
    note(f"all done in {time.monotonic() - began:.1f}s")
    return 0 if ok else 1


def _print_line(result: Line) -> None:
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    sys.stdout.flush()
