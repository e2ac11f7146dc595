"""``rcr rebuild-redis``: write every customer's lookup again, from the table's changelog."""

from __future__ import annotations

import asyncio
import time

import click
from prometheus_client import CollectorRegistry

from stream.app.changelog import changelog_topic, read_changelog
from stream.app.kafka_options import client_options
from stream.cli.options import settings_options
from stream.engine.lookup import CustomerView, Lookups
from stream.metrics.pipeline import PipelineMetrics
from stream.settings import Settings
from stream.sinks.redis_projection import RedisProjection, redis_tls_options


@click.command("rebuild-redis")
@settings_options
def rebuild_redis(settings: Settings) -> None:
    """Rebuild the Redis lookups from the customers table (workers may keep running)."""
    count = asyncio.run(_rebuild(settings))
    click.echo(f"rebuilt {count} customer lookups in Redis")


async def _rebuild(settings: Settings) -> int:
    changelog = await read_changelog(changelog_topic(settings.app_id), client_options(settings))
    timelines = changelog.timelines
    now_ms = int(time.time() * 1000)
    windows = settings.window_ms
    lookups = Lookups(
        windows, settings.repeat_interval_ms, settings.burst_rule, settings.repeat_definitions
    )

    def view_of(customer_id: str) -> CustomerView:
        return lookups.view(customer_id, timelines[customer_id], now_ms)

    ttl_s = max(windows.values()) // 1000
    projection = RedisProjection(
        settings.redis_url,
        settings.redis_prefix,
        tuple(windows),
        ttl_s,
        view_of,
        PipelineMetrics(CollectorRegistry()),
        settings.top_customers,
        tls=redis_tls_options(settings),
    )
    try:
        projection.mark(timelines)
        await projection.flush()
    finally:
        await projection.close()
    return len(timelines)
