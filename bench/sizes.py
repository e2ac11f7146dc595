"""How big each scenario is, in full and quick mode."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    stream_events: int  # pre-produced topic read by raw_consumer, naive_faust and worker
    naive_events: int  # naive_faust stops after this many (it reads the same topic)
    worker_timeout_s: float
    freshness_rates: tuple[int, ...]  # events/s of background load, one line each
    freshness_seconds: float
    freshness_markers_per_s: float
    freshness_drain_s: float  # how long to wait for the last markers after producing stops
    memory_customers: int
    recovery_customers: int
    recovery_timeout_s: float
    compute_lines: int
    profile_seconds: int


FULL = Sizes(
    stream_events=200_000,
    naive_events=40_000,
    worker_timeout_s=120.0,
    freshness_rates=(10_000, 1_000, 200),
    freshness_seconds=30.0,
    freshness_markers_per_s=20.0,
    freshness_drain_s=60.0,
    memory_customers=1_000_000,
    # Recovery ran at ~1.1k customers/s when this was written: 1M would take ~15 minutes.
    recovery_customers=200_000,
    recovery_timeout_s=900.0,
    compute_lines=1_000_000,
    profile_seconds=15,
)

QUICK = Sizes(
    stream_events=5_000,
    naive_events=3_000,
    worker_timeout_s=60.0,
    freshness_rates=(300,),
    freshness_seconds=4.0,
    freshness_markers_per_s=20.0,
    freshness_drain_s=20.0,
    memory_customers=50_000,
    recovery_customers=20_000,
    recovery_timeout_s=120.0,
    compute_lines=100_000,
    profile_seconds=5,
)
