"""The Redis projection alone: ``python -m bench.projection [EVENTS] [ROUNDS]``.

Ingests EVENTS of the backlog scenario's traffic into one engine (default settings: four
rolling windows, the ``queue`` dimension, bursts), then, ROUNDS times, writes every
customer's lookup to a fresh embedded Redis through ``RedisProjection.flush`` as the
worker does. Per round it times the views alone (the engine's side, CPU), the whole flush
(views, packing, Redis: wall time, and this process's CPU time, which is what the worker
pays: it serves Kafka while Redis works) and the CPU time Redis itself spent (``INFO
cpu``). Prints one JSON line; no broker needed.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from typing import Any

import orjson
import redis
from prometheus_client import CollectorRegistry

from bench.load import backlog_records
from stream.embedded import EmbeddedRedis
from stream.engine import Engine, EngineConfig, Rejection, decode_contact
from stream.engine.lookup import CustomerView, Lookups
from stream.metrics.pipeline import PipelineMetrics
from stream.settings import Settings
from stream.sinks.redis_projection import RedisProjection

DEFAULT_EVENTS = 60_000
DEFAULT_ROUNDS = 5


def loaded_engine(settings: Settings, events: int) -> Engine:
    config = EngineConfig.from_settings(settings)
    engine = Engine(config, now_ms=int(time.time() * 1000))
    for _, value in backlog_records(events):
        decoded = decode_contact(value, dimensions=config.dimensions)
        if not isinstance(decoded, Rejection):
            engine.ingest(decoded)
    engine.take_changed()
    return engine


def server_cpu_s(client: redis.Redis) -> float:
    """CPU seconds the Redis server has used (commands, network, Lua): its own clock, so
    other processes on the machine do not inflate it as they do ``commandstats``' usec."""
    cpu = client.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


async def rounds(settings: Settings, engine: Engine, url: str, count: int) -> dict[str, Any]:
    config = engine.config
    lookups = Lookups(
        config.windows, config.repeat_interval_ms, settings.burst_rule, config.all_definitions
    )
    customers = engine.customers

    def view_of(customer_id: str) -> CustomerView | None:
        timeline = customers.get(customer_id)
        return None if timeline is None else lookups.view(customer_id, timeline, engine.now_ms)

    projection = RedisProjection(
        url,
        settings.redis_prefix,
        tuple(config.windows),
        max(config.windows.values()) // 1000,
        view_of,
        PipelineMetrics(CollectorRegistry()),
        settings.top_customers,
    )
    admin = redis.Redis.from_url(url)
    views_s, flush_s, cpu_s, redis_s = [], [], [], []
    try:
        for _ in range(count):
            began = time.process_time()
            for customer_id in customers:
                view_of(customer_id)
            views_s.append(time.process_time() - began)
            admin.flushdb()
            redis_before = server_cpu_s(admin)
            projection.mark(customers)
            began, cpu = time.perf_counter(), time.process_time()
            await projection.flush()
            flush_s.append(time.perf_counter() - began)
            cpu_s.append(time.process_time() - cpu)
            redis_s.append(server_cpu_s(admin) - redis_before)
    finally:
        await projection.close()
        admin.close()
    per_customer_us = 1e6 / len(customers)
    return {
        "scenario": "projection",
        "customers": len(customers),
        "rounds": count,
        "views_cpu_us_per_customer": [round(s * per_customer_us, 2) for s in views_s],
        "flush_us_per_customer": [round(s * per_customer_us, 2) for s in flush_s],
        "flush_cpu_us_per_customer": [round(s * per_customer_us, 2) for s in cpu_s],
        "redis_cpu_us_per_customer": [round(s * per_customer_us, 2) for s in redis_s],
        "flush_median_us": round(statistics.median(flush_s) * per_customer_us, 2),
        "flush_cpu_median_us": round(statistics.median(cpu_s) * per_customer_us, 2),
        "flush_customers_per_s": round(len(customers) / statistics.median(flush_s)),
    }


def main(argv: list[str]) -> None:
    events = int(argv[0]) if argv else DEFAULT_EVENTS
    count = int(argv[1]) if len(argv) > 1 else DEFAULT_ROUNDS
    settings = Settings()
    engine = loaded_engine(settings, events)
    with EmbeddedRedis() as server:
        result = asyncio.run(rounds(settings, engine, server.url, count))
    sys.stdout.write(orjson.dumps({"events": events, **result}).decode() + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
