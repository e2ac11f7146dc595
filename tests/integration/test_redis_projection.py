"""The projection's script leaves Redis exactly as plain commands would (contract section 4).

The reference below is the projection as it was written before the script: per customer
``HSET`` + ``EXPIRE`` and a ``ZADD``/``ZREM`` per window, the bursts' ``ZADD``, and the
drill-down trimmed at the end of the batch. Both write the same views under two prefixes
of one Redis; every key, field (in order), score and TTL must match.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping

import pytest
import redis
from prometheus_client import CollectorRegistry
from redis.exceptions import RedisError

from stream.embedded import EmbeddedRedis, free_port
from stream.engine.definitions import Definition, MatchingKey
from stream.engine.lookup import BURSTS_KEPT_MS, CustomerView, Lookups
from stream.engine.timeline import CustomerTimeline, dimension_label
from stream.metrics.pipeline import PipelineMetrics
from stream.sinks.redis_projection import (
    CHUNK,
    RedisProjection,
    burst_text,
    bursts_key,
    customer_key,
    top_customers_key,
)

pytestmark = pytest.mark.integration

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
WINDOWS = {"1h": HOUR, "24h": DAY, "7d": 7 * DAY, "30d": 30 * DAY}
TTL_S = 30 * 86_400
TOP_SIZE = 20
NOW = int(time.time() * 1000)  # the projection trims bursts by the wall clock
Views = Mapping[str, CustomerView | None]


def reference_write(client: redis.Redis, prefix: str, views: Views, now_ms: int) -> None:
    pipe = client.pipeline(transaction=False)
    for customer_id, view in views.items():
        key = customer_key(prefix, customer_id)
        if view is None:
            pipe.delete(key)
            for window in WINDOWS:
                pipe.zrem(top_customers_key(prefix, window), customer_id)
            continue
        pipe.hset(key, mapping={**view.fields, "updated_at": "now"})
        pipe.expire(key, TTL_S)
        if view.contacts >= 2:
            for window in WINDOWS:
                top = top_customers_key(prefix, window)
                contacts = int(view.fields[f"contacts_{window}"])
                if contacts >= 2:
                    pipe.zadd(top, {customer_id: contacts})
                else:
                    pipe.zrem(top, customer_id)
        if view.bursts:
            found = {burst_text(burst): burst.at_ms for burst in view.bursts}
            pipe.zadd(bursts_key(prefix), found)  # type: ignore[arg-type]
    for window in WINDOWS:
        top = top_customers_key(prefix, window)
        pipe.zremrangebyrank(top, 0, -TOP_SIZE - 1)
        pipe.expire(top, TTL_S)
    bursts = bursts_key(prefix)
    pipe.zremrangebyscore(bursts, "-inf", now_ms - BURSTS_KEPT_MS)
    pipe.zremrangebyrank(bursts, 0, -TOP_SIZE - 1)
    pipe.expire(bursts, BURSTS_KEPT_MS // 1000)
    pipe.execute()


def projection_write(url: str, prefix: str, views: Views) -> None:
    async def write() -> None:
        projection = _projection(url, prefix, views)
        try:
            projection.mark(views)
            await projection.flush()
        finally:
            await projection.close()

    asyncio.run(write())


def _projection(url: str, prefix: str, views: Views) -> RedisProjection:
    return RedisProjection(
        url,
        prefix,
        tuple(WINDOWS),
        TTL_S,
        views.__getitem__,
        PipelineMetrics(CollectorRegistry()),
        TOP_SIZE,
    )


def contents(client: redis.Redis, prefix: str) -> dict[str, object]:
    """Every key under ``prefix`` (without it): hash fields in order, sets with scores."""
    found: dict[str, object] = {}
    for key in client.scan_iter(match=f"{prefix}*"):
        ttl = client.ttl(key)
        if client.type(key) == "hash":
            fields = client.hgetall(key)
            assert fields.pop("updated_at")
            value: object = list(fields.items())
        else:
            value = client.zrange(key, 0, -1, withscores=True)
        found[key.removeprefix(prefix)] = (value, round(ttl, -1))
    return found


def random_timeline(rnd: random.Random, customer: int) -> CustomerTimeline:
    channels, reasons = ["phone", "chat"], ["billing", "login", "facturación"]
    contacts = []
    for n in range(rnd.choice([1, 1, 1, 2, 2, 3, 4, 6, 12])):
        # Mostly the last day (bursts, the 1h window), some up to 40 days back.
        ago = rnd.randrange(20 * HOUR) if rnd.random() < 0.7 else rnd.randrange(40 * DAY)
        queue = (dimension_label("queue", rnd.choice(["vip", "standard"])),)
        contacts.append(
            (NOW - ago, f"k{customer}-{n}", rnd.choice(channels), rnd.choice(reasons), queue)
        )
    return CustomerTimeline(contacts)


def views_of(lookups: Lookups, timelines: Mapping[str, CustomerTimeline | None]) -> Views:
    return {
        customer_id: None if timeline is None else lookups.view(customer_id, timeline, NOW)
        for customer_id, timeline in timelines.items()
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_script_writes_what_plain_commands_write(redis_server, redis_client, seed):
    rnd = random.Random(seed)
    same_issue = Definition("same_issue", MatchingKey.CUSTOMER_REASON, DAY)
    lookups = Lookups(WINDOWS, 7 * DAY, (3, 30 * MINUTE), (same_issue,))
    customers = 4 * CHUNK + 37  # several script calls, the last one short
    timelines: dict[str, CustomerTimeline | None] = {
        f"cust-{n}": random_timeline(rnd, n) for n in range(customers)
    }
    rounds = [timelines]
    # Then some customers change (new timelines, some shorter: they leave top sets), some
    # are gone, and the rest are not written again.
    changed = rnd.sample(sorted(timelines), customers // 3)
    rounds.append(
        {
            c: None if rnd.random() < 0.3 else random_timeline(rnd, 10_000 + i)
            for i, c in enumerate(changed)
        }
    )
    for written in rounds:
        views = views_of(lookups, written)
        reference_write(redis_client, "ref:", views, NOW)
        projection_write(redis_server.url, "new:", views)
        expected = contents(redis_client, "ref:")
        assert contents(redis_client, "new:") == expected
        assert len(expected) > customers // 2  # the comparison compared something


def test_many_bursts_of_one_customer_go_in_slices(redis_server, redis_client):
    lookups = Lookups(WINDOWS, 7 * DAY, (2, MINUTE), ())
    # A contact every 40 s for 20 hours: each one makes a burst of two within a minute.
    contacts = [(NOW - n * 40_000, f"k{n}", "chat", "login", ()) for n in range(1800)]
    views = views_of(lookups, {"busy": CustomerTimeline(contacts)})
    assert len(views["busy"].bursts) > 1000  # type: ignore[union-attr]
    reference_write(redis_client, "ref:", views, NOW)
    projection_write(redis_server.url, "new:", views)
    assert contents(redis_client, "new:") == contents(redis_client, "ref:")


def test_the_script_is_loaded_again_after_redis_forgot_it(redis_server, redis_client):
    lookups = Lookups(WINDOWS, 7 * DAY, (3, 30 * MINUTE), ())
    views = views_of(lookups, {"a": random_timeline(random.Random(4), 1)})
    projection_write(redis_server.url, "new:", views)
    redis_client.script_flush()  # what a restarted Redis knows
    redis_client.flushdb()
    projection_write(redis_server.url, "new:", views)
    assert redis_client.exists(customer_key("new:", "a"))


def test_customers_stay_pending_while_redis_is_away():
    lookups = Lookups(WINDOWS, 7 * DAY, (3, 30 * MINUTE), ())
    views = views_of(lookups, {"a": random_timeline(random.Random(5), 1), "b": None})
    nobody = EmbeddedRedis(port=free_port())  # not started: nothing listens there

    async def write() -> list[str]:
        projection = _projection(nobody.url, "new:", views)
        try:
            projection.mark(views)
            with pytest.raises((RedisError, OSError)):
                await projection.flush()
            return list(projection.pending)
        finally:
            await projection.close()

    assert asyncio.run(write()) == ["a", "b"]  # in the order they were marked
