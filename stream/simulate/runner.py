"""Send generated contacts to Kafka at the simulated clock's pace.

The simulated clock maps event time to send time. Live (the default) it is the wall clock:
every event is sent when its timestamp arrives. With a historical ``start`` it runs ``speed``
times faster (as fast as possible by default) but never ahead of the wall clock, so a
backfill that catches up with the present turns into live traffic instead of events from
the future, which the worker would reject ``too_far_in_future``.

Pacing sleeps until the next event is due and then sends every event due by then, so the
rate is exact on average (due times are absolute, sleeps never accumulate drift) without
busy-waiting, and sends are naturally batched at high rates.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from stream.producing import KeyedProducer, ensure_topic
from stream.simulate.generator import (
    Contact,
    SimConfig,
    diurnal_factor,
    format_timestamp_ms,
    generate,
)

# Sleeping for less than this costs more in scheduling error than it saves.
MIN_SLEEP_S = 0.002
# Give the event loop (signals, the producer's sender) a turn at least this often.
YIELD_EVERY = 500


@dataclass
class SimulationReport:
    """What a run produced, for the one-line summary and for tests."""

    seed: int
    scenario: str
    topic: str
    sent: int = 0
    inbound: int = 0
    outbound: int = 0
    first_at: float | None = None
    last_at: float | None = None
    elapsed_s: float = 0.0
    stopped: bool = False
    # The configured mean rate times the diurnal factor at mid-run: what to compare against.
    expected_rate: float | None = None

    def count(self, contact: Contact) -> None:
        self.sent += 1
        if contact.event["direction"] == "outbound":
            self.outbound += 1
        else:
            self.inbound += 1
        if self.first_at is None:
            self.first_at = contact.at
        self.last_at = contact.at

    def summary(self) -> str:
        """One line: what went where, how fast, and how to reproduce it."""
        throughput = self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0
        span = ""
        if self.first_at is not None and self.last_at is not None:
            first = format_timestamp_ms(int(self.first_at * 1000))
            last = format_timestamp_ms(int(self.last_at * 1000))
            seconds = self.last_at - self.first_at
            rate = f", {self.sent / seconds:,.1f}/s" if seconds > 0 else ""
            expected = (
                f" (diurnal curve: ~{self.expected_rate:,.1f}/s)" if self.expected_rate else ""
            )
            span = f"; event time {first} .. {last}{rate}{expected}"
        how = "stopped" if self.stopped else "done"
        return (
            f"simulate {how}: {self.sent} events ({self.inbound} inbound, {self.outbound} "
            f"outbound) to {self.topic!r} in {self.elapsed_s:.1f}s ({throughput:,.1f}/s){span}; "
            f"scenario {self.scenario}, seed {self.seed}"
        )


@dataclass(frozen=True)
class SimClock:
    """Event time -> monotonic send time (see the module docstring)."""

    start: float
    speed: float
    wall_origin: float
    mono_origin: float

    @classmethod
    def live(cls, now_wall: float, now_mono: float) -> SimClock:
        return cls(now_wall, 1.0, now_wall, now_mono)

    def due(self, event_at: float) -> float:
        """When (loop time) an event may be sent: its pace, but never before its wall time."""
        paced = (event_at - self.start) / self.speed if math.isfinite(self.speed) else 0.0
        return self.mono_origin + max(paced, event_at - self.wall_origin)


async def _sleep_or_stop(delay: float, stop: asyncio.Event) -> None:
    """Sleep ``delay`` seconds, waking at once when ``stop`` is set (Ctrl-C)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=delay)


async def send_paced(
    contacts: Iterable[Contact],
    producer: KeyedProducer,
    clock: SimClock,
    stop: asyncio.Event,
    report: SimulationReport,
) -> None:
    """Send each contact when the clock says it is due, until exhausted or ``stop`` is set."""
    loop = asyncio.get_running_loop()
    for contact in contacts:
        delay = clock.due(contact.at) - loop.time()
        if delay > MIN_SLEEP_S:
            await _sleep_or_stop(delay, stop)
        elif report.sent % YIELD_EVERY == 0:
            await asyncio.sleep(0)
        if stop.is_set():
            report.stopped = True
            return
        await producer.send(contact.key, contact.event)
        report.count(contact)


def install_stop_handlers(stop: asyncio.Event) -> None:
    """First Ctrl-C (or SIGTERM) sets ``stop`` for a clean flush; a second one interrupts."""
    loop = asyncio.get_running_loop()

    def first_signal(sig: signal.Signals) -> None:
        stop.set()
        with contextlib.suppress(Exception):
            loop.remove_signal_handler(sig)

    for sig in (signal.SIGINT, signal.SIGTERM):
        # Not available off the main thread or on some platforms: then Ctrl-C just interrupts.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, first_signal, sig)


async def run_simulation(
    config: SimConfig,
    *,
    bootstrap_servers: str,
    topic: str,
    start: float | None = None,
    duration_s: float | None = None,
    speed: float = math.inf,
    partitions: int | None = None,
    stop: asyncio.Event | None = None,
    security: Mapping[str, Any] | None = None,
) -> SimulationReport:
    """Produce simulated contacts to ``topic`` keyed by customer; returns what was sent.

    ``start=None`` is live (wall clock, ``speed`` ignored); otherwise event time starts at
    ``start`` (epoch s) and runs ``speed`` times real time, capped by the wall clock.
    ``duration_s`` bounds the event-time span; without it the run ends when ``stop`` is set.
    ``partitions`` creates the topic with that many partitions when it does not exist.
    Without a ``stop`` event, Ctrl-C and SIGTERM stop the run cleanly (after a flush).
    """
    if stop is None:
        stop = asyncio.Event()
        install_stop_handlers(stop)
    loop = asyncio.get_running_loop()
    now_wall, now_mono = time.time(), loop.time()
    if start is None:
        clock = SimClock.live(now_wall, now_mono)
    else:
        clock = SimClock(start, speed, now_wall, now_mono)
    until = clock.start + duration_s if duration_s is not None else None
    report = SimulationReport(config.seed, config.scenario, topic)
    if partitions:
        await ensure_topic(bootstrap_servers, topic, partitions, security)
    contacts = generate(config, clock.start, until=until)
    async with KeyedProducer(
        bootstrap_servers, topic, client_id="rcr-simulate", security=security
    ) as producer:
        await send_paced(contacts, producer, clock, stop, report)
    report.elapsed_s = loop.time() - now_mono
    report.expected_rate = _expected_rate(config, report)
    return report


def _expected_rate(config: SimConfig, report: SimulationReport) -> float | None:
    """Mean rate x diurnal factor at mid-run, so a live run at 3 am is not mistaken for a bug."""
    if report.first_at is None or report.last_at is None:
        return None
    middle = (report.first_at + report.last_at) / 2
    return config.rate * diurnal_factor(middle, config.diurnal_amplitude, config.peak_hour_utc)
