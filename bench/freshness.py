"""Freshness: produced -> visible in Redis and in /metrics, under steady background load.

Background contacts (the project's generator, steady, pre-generated) are sent on their
schedule; every ``1 / markers_per_s`` seconds a marker contact for a brand-new customer is
sent too. A poller thread then records, for each marker:

* **Redis**: when ``{prefix}customer:{id}`` first exists (polled every 20 ms);
* **/metrics**: when ``rcr_events_total`` first covers every record sent up to and including
  the marker (polled every 250 ms), i.e. when the figures include everything produced by then.

Latency is that moment minus the moment the marker was handed to the producer (monotonic
clock). Markers never seen before the drain deadline count at the deadline (a lower bound).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis
from aiokafka import AIOKafkaProducer

from bench.load import Record, create_topic, live_contacts
from bench.progress import line, percentile
from bench.services import Stack, WorkerProcess, running_worker
from stream.simulate import format_timestamp_ms

REDIS_POLL_S = 0.02
METRICS_POLL_S = 0.25  # scrapes cost the worker CPU: not too often
SEND_TICK_S = 0.005
READY_TIMEOUT_S = 120.0


@dataclass
class Marker:
    customer_id: str
    sent_at: float  # monotonic
    cumulative: int  # records sent so far, this one included
    in_redis_at: float | None = None


@dataclass
class Observations:
    """Shared between the sender (event loop) and the poller thread."""

    markers: list[Marker] = field(default_factory=list)
    totals: list[tuple[float, float]] = field(default_factory=list)  # (monotonic, events_total)
    sent: int = 0
    sending_done: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_marker(self, marker: Marker) -> None:
        with self.lock:
            self.markers.append(marker)

    def unseen(self) -> list[Marker]:
        with self.lock:
            return [m for m in self.markers if m.in_redis_at is None]


def freshness(
    stack: Stack, rate: int, seconds: float, markers_per_s: float, drain_s: float
) -> dict[str, Any]:
    records = live_contacts(rate, seconds)
    bootstrap = stack.services.broker.bootstrap
    asyncio.run(create_topic(bootstrap, stack.topic))
    observed = Observations()
    with running_worker(stack) as worker:
        worker.wait_ready(READY_TIMEOUT_S)
        poller = _Poller(worker, stack, observed)
        poller.start()
        try:
            send_seconds = asyncio.run(
                _send(bootstrap, stack, records, seconds, markers_per_s, observed)
            )
            poller.join(drain_s + 5)
        finally:
            poller.stop.set()
            poller.join(5)
    return _line(rate, observed, send_seconds, drain_s)


async def _send(
    bootstrap: str,
    stack: Stack,
    records: list[tuple[float, Record]],
    seconds: float,
    markers_per_s: float,
    observed: Observations,
) -> float:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks=1)
    await producer.start()
    try:
        began = time.monotonic()
        await _paced(producer, stack, records, seconds, markers_per_s, observed, began)
        await producer.flush()
        return time.monotonic() - began
    finally:
        await producer.stop()
        observed.sending_done = True


async def _paced(
    producer: AIOKafkaProducer,
    stack: Stack,
    records: list[tuple[float, Record]],
    seconds: float,
    markers_per_s: float,
    observed: Observations,
    began: float,
) -> None:
    topic, index, markers = stack.topic, 0, 0
    while (elapsed := time.monotonic() - began) < seconds:
        while index < len(records) and records[index][0] <= elapsed:
            key, value = records[index][1]
            await producer.send(topic, value, key=key.encode())
            index += 1
            observed.sent += 1
        if elapsed * markers_per_s >= markers:
            await _send_marker(producer, stack, markers, observed)
            markers += 1
        await asyncio.sleep(SEND_TICK_S)


async def _send_marker(
    producer: AIOKafkaProducer, stack: Stack, number: int, observed: Observations
) -> None:
    customer_id = f"fresh-{stack.name}-{number}-{uuid.uuid4().hex[:6]}"
    event = {
        "contact_id": f"marker-{customer_id}",
        "customer_id": customer_id,
        "timestamp": format_timestamp_ms(int(time.time() * 1000)),
        "channel": "chat",
        "reason": "billing",
        "direction": "inbound",
    }
    sent_at = time.monotonic()
    await producer.send(stack.topic, orjson.dumps(event), key=customer_id.encode())
    observed.sent += 1
    observed.add_marker(Marker(customer_id, sent_at, observed.sent))


class _Poller(threading.Thread):
    """Polls Redis and /metrics until every marker is visible or the drain deadline."""

    def __init__(self, worker: WorkerProcess, stack: Stack, observed: Observations) -> None:
        super().__init__(name="freshness-poller", daemon=True)
        self.worker = worker
        self.prefix = stack.redis_prefix
        self.client = redis.Redis.from_url(stack.services.redis.url)
        self.observed = observed
        self.stop = threading.Event()

    def run(self) -> None:
        next_metrics = 0.0
        while not self.stop.is_set() and not self._finished():
            now = time.monotonic()
            self._poll_redis()
            if now >= next_metrics:
                self._poll_metrics(now)
                next_metrics = now + METRICS_POLL_S
            time.sleep(REDIS_POLL_S)
        self.client.close()

    def _finished(self) -> bool:
        observed = self.observed
        if not observed.sending_done or observed.unseen():
            return False
        return bool(observed.totals) and observed.totals[-1][1] >= observed.sent

    def _poll_redis(self) -> None:
        unseen = self.observed.unseen()
        if not unseen:
            return
        pipe = self.client.pipeline(transaction=False)
        for marker in unseen:
            pipe.exists(f"{self.prefix}customer:{marker.customer_id}")
        answers = pipe.execute()
        seen_at = time.monotonic()
        for marker, exists in zip(unseen, answers, strict=True):
            if exists:
                marker.in_redis_at = seen_at

    def _poll_metrics(self, now: float) -> None:
        try:
            total = self.worker.events_total()
        except OSError:
            return
        self.observed.totals.append((now, total))


def _metrics_latencies(observed: Observations, deadline: float) -> list[float]:
    latencies = []
    totals = observed.totals
    position = 0
    for marker in sorted(observed.markers, key=lambda m: m.cumulative):
        while position < len(totals) and totals[position][1] < marker.cumulative:
            position += 1
        visible = totals[position][0] if position < len(totals) else deadline
        latencies.append(max(visible, marker.sent_at) - marker.sent_at)
    return latencies


def _line(rate: int, observed: Observations, send_seconds: float, drain_s: float) -> dict[str, Any]:
    markers = observed.markers
    deadline = time.monotonic()
    redis_latencies = [(m.in_redis_at or deadline) - m.sent_at for m in markers]
    metrics_latencies = _metrics_latencies(observed, deadline)
    consumed = _consumed_rate(observed.totals)
    return line(
        "freshness",
        observed.sent,
        send_seconds,
        observed.sent / max(send_seconds, 1e-9),
        unit="events/s produced (background + markers)",
        target_rate=rate,
        worker_consumed_rate=round(consumed, 1),
        markers=len(markers),
        markers_unseen_in_redis=sum(1 for m in markers if m.in_redis_at is None),
        redis_p50_s=percentile(redis_latencies, 0.5),
        redis_p99_s=percentile(redis_latencies, 0.99),
        redis_max_s=max(redis_latencies, default=None),
        metrics_p50_s=percentile(metrics_latencies, 0.5),
        metrics_p99_s=percentile(metrics_latencies, 0.99),
        metrics_max_s=max(metrics_latencies, default=None),
        poll_interval_s={"redis": REDIS_POLL_S, "metrics": METRICS_POLL_S},
        drain_timeout_s=drain_s,
        target_p99_s=1.0,
    )


def _consumed_rate(totals: list[tuple[float, float]]) -> float:
    """Events/s the worker counted while it had work (first to last change of the total)."""
    changes = [
        (t, n) for (t, n), (_, before) in zip(totals[1:], totals, strict=False) if n > before
    ]
    if len(changes) < 2:
        return 0.0
    (t0, n0), (t1, n1) = changes[0], changes[-1]
    return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0
