"""Denominators on real workers and a real broker: contacts per order, per subscriber."""

from __future__ import annotations

import asyncio
import json
import math
import random
import time

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from stream.engine.periods import Calendar, PeriodKind
from tests.integration.test_worker import eventually, expected_figures
from tests.integration.traffic import MINUTE_MS, contact_records, produce, safe_now_ms
from tests.integration.workers import Stack, WorkerProcess

pytestmark = pytest.mark.integration

DAY_MS = 86_400_000
ROLLING = {"1h": 3_600_000, "24h": DAY_MS, "7d": 7 * DAY_MS, "30d": 30 * DAY_MS}
# (timestamp field or None, Kafka record timestamp, count) -> what the worker counts.
Order = tuple[object, int, int]


def order_records(now_ms: int, seed: int) -> tuple[list[Order], list[bytes], int]:
    """Orders in every format, plus records no worker can count and too old ones.

    Returns the countable orders (event time, count), the undecodable values, and how
    many records are older than the retention.
    """
    rnd = random.Random(seed)
    calendar = Calendar("UTC")
    orders: list[Order] = []
    for n in range(400):
        # Within the hour, earlier today, or days back: never near a rolling window's edge.
        when = rnd.choice(
            [
                now_ms - rnd.randint(MINUTE_MS, 50 * MINUTE_MS),
                now_ms - rnd.randint(2, 20) * 3_600_000,
                now_ms - rnd.randint(2, 6) * DAY_MS,
                now_ms - rnd.randint(8, 28) * DAY_MS,
            ]
        )
        count = rnd.choice([1, 1, 1, 2, 5])
        style = n % 4
        if style == 0:
            orders.append((calendar.to_rfc3339_ms(when), when, count))
        elif style == 1:
            orders.append((when, when, count))
        elif style == 2:
            orders.append((when / 1000, when, count))  # epoch seconds
        else:
            orders.append((None, when, count))  # only the Kafka record timestamp
    undecodable = [b"not json", b"[1, 2]", b'{"timestamp": 1, "count": -4}']
    return orders, undecodable, 1


def produce_orders(
    bootstrap: str, topic: str, orders: list[Order], undecodable: list[bytes], too_old_ms: int
) -> None:
    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
        await producer.start()
        try:
            for n, (field, kafka_ms, count) in enumerate(orders):
                document: dict[str, object] = {"order_id": f"o{n}"}
                if field is not None:
                    document["timestamp"] = field
                if count != 1:
                    document["count"] = count
                await producer.send(
                    topic, orjson.dumps(document), key=f"o{n}".encode(), timestamp_ms=kafka_ms
                )
            for value in undecodable:
                await producer.send(topic, value, key=b"junk")
            old = orjson.dumps({"timestamp": too_old_ms})
            await producer.send(topic, old, key=b"old")
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(send())


def brute_force_orders(orders: list[Order], now_ms: int) -> dict[str, int]:
    """Orders per window from the definitions, at ``now_ms``."""
    calendar = Calendar("UTC")
    bounds = {name: (now_ms - length + 1, now_ms + 1) for name, length in ROLLING.items()}
    for kind in PeriodKind:
        period = calendar.period_of(kind, now_ms)
        previous = calendar.previous(period)
        bounds[kind.value] = (period.start_ms, now_ms + 1)
        bounds[f"previous_{kind.value}"] = (previous.start_ms, previous.end_ms)
    return {
        window: sum(count for _, when, count in orders if start <= when < end)
        for window, (start, end) in bounds.items()
    }


def per(contacts: int, denominator: int) -> float:
    return contacts / denominator if denominator else math.nan


def gauges(worker: WorkerProcess, metric: str, name: str) -> dict[str, float]:
    return {
        dict(labels)["window"]: value
        for (sample, labels), value in worker.metrics().items()
        if sample == metric and dict(labels).get("name") == name
    }


def test_contacts_per_order_and_per_subscriber_on_every_worker(broker, redis_server, tmp_path):
    stack = Stack(broker.url, redis_server.url, tmp_path)
    orders_topic, subscribers_topic = f"orders-{stack.name}", f"subscribers-{stack.name}"
    setting = f"orders={orders_topic}:count,subscribers={subscribers_topic}:snapshot"
    workers = [stack.start_worker(RCR_DENOMINATORS=setting) for _ in range(2)]
    try:
        for worker in workers:
            worker.wait_ready()
        now = safe_now_ms()
        contacts = contact_records(300, seed=71, now_ms=now)
        orders, undecodable, too_old = order_records(now, seed=72)
        produce(broker.bootstrap, stack.topic, contacts)
        produce_orders(broker.bootstrap, orders_topic, orders, undecodable, now - 80 * DAY_MS)
        subscriber_counts = [{"segment": "all", "value": 400}, {"segment": "all", "value": 500}]
        produce(
            broker.bootstrap,
            subscribers_topic,
            [(b"all", orjson.dumps(doc)) for doc in subscriber_counts]
            + [(b"all", b'{"segment": "all", "value": "many"}')],
        )

        def check(worker: WorkerProcess) -> bool:
            at = int(time.time() * 1000)
            expected_orders = brute_force_orders(orders, at)
            expected_contacts = {
                window: figures.contacts
                for (window, channel, reason), figures in expected_figures(contacts, at).items()
                if (channel, reason) == ("all", "all")
            }
            ratios = gauges(worker, "rcr_contacts_per_denominator", "orders")
            per_subscriber = gauges(worker, "rcr_contacts_per_denominator", "subscribers")
            return (
                gauges(worker, "rcr_denominator", "orders") == expected_orders
                and gauges(worker, "rcr_denominator", "subscribers") == {"latest": 500}
                and all(
                    # A window without orders (previous_day, late in the UTC day) has no
                    # ratio: the gauge says NaN.
                    ratios[w] == pytest.approx(per(expected_contacts.get(w, 0), n), nan_ok=True)
                    for w, n in expected_orders.items()
                )
                and all(
                    per_subscriber[w] == pytest.approx(expected_contacts.get(w, 0) / 500)
                    for w in expected_orders
                )
            )

        for worker in workers:
            eventually(
                lambda worker=worker: check(worker),
                explain=lambda worker=worker: (
                    gauges(worker, "rcr_denominator", "orders"),
                    brute_force_orders(orders, int(time.time() * 1000)),
                    gauges(worker, "rcr_contacts_per_denominator", "subscribers"),
                ),
            )
            samples = worker.metrics()
            records = {
                dict(labels)["outcome"]: value
                for (name, labels), value in samples.items()
                if name == "rcr_denominator_records_total" and dict(labels)["name"] == "orders"
            }
            assert records == {
                "accepted": len(orders),
                "rejected": len(undecodable),
                "too_late": too_old,
            }
            status, body = worker.get("/rates")
            assert status == 200
            rates = json.loads(body)["denominators"]
            assert rates["subscribers"]["kind"] == "snapshot"
            assert rates["subscribers"]["windows"]["1h"]["denominator"] == 500
            hour = rates["orders"]["windows"]["1h"]
            assert hour["denominator"] == brute_force_orders(orders, int(time.time() * 1000))["1h"]
            assert math.isclose(hour["contacts_per"], samples[_series("1h")])
    finally:
        for worker in workers:
            worker.kill()


def _series(window: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return ("rcr_contacts_per_denominator", (("name", "orders"), ("window", window)))


def test_figures_wait_until_the_topic_is_read(broker, redis_server, tmp_path):
    """A worker started on a topic with history shows no order count before it read it all,
    then the whole count: never a partial one."""
    stack = Stack(broker.url, redis_server.url, tmp_path)
    topic = f"orders-{stack.name}"
    now = safe_now_ms()
    orders = [(None, now - n * 100, 1) for n in range(100_000)]
    produce_orders(broker.bootstrap, topic, orders, [], now - 80 * DAY_MS)
    worker = stack.start_worker(RCR_DENOMINATORS=f"orders={topic}:count")
    try:
        seen: list[float] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                value = gauges(worker, "rcr_denominator", "orders").get("24h")
            except OSError:
                value = None  # not listening yet
            if value is not None:
                seen.append(value)
                if value == len(orders):
                    break
            time.sleep(0.05)
        assert seen and set(seen) == {len(orders)}, seen[:5]
    finally:
        worker.kill()
