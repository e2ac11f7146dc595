"""Per-customer lookups in Redis (contract section 4), written in pipelined batches.

Redis is a projection, never the source of truth: the projection only remembers *which*
customers changed and asks the engine for their current lookup when it writes. A Redis
outage therefore costs memory proportional to the customers touched, loses nothing, and
heals itself when Redis answers again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from stream.engine.periods import Calendar
from stream.metrics.pipeline import PipelineMetrics

log = logging.getLogger(__name__)

Lookup = Callable[[str], dict[str, str] | None]  # None: the customer has no state any more
BATCH = 2_000
MAX_BACKOFF_S = 10.0
_UTC = Calendar("UTC")


def customer_key(prefix: str, customer_id: str) -> str:
    return f"{prefix}customer:{customer_id}"


class RedisProjection:
    def __init__(
        self, url: str, prefix: str, ttl_seconds: int, lookup: Lookup, metrics: PipelineMetrics
    ) -> None:
        self.client = aioredis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        self.prefix = prefix
        self.ttl_seconds = ttl_seconds
        self.lookup = lookup
        self.metrics = metrics
        self.pending: set[str] = set()
        self.healthy = False

    def mark(self, customer_ids: Iterable[str]) -> None:
        self.pending.update(customer_ids)

    async def flush(self) -> None:
        """Write every pending customer; raises ``RedisError``/``OSError`` on failure."""
        while self.pending:
            batch = [self.pending.pop() for _ in range(min(BATCH, len(self.pending)))]
            try:
                await self._write(batch)
            except BaseException:
                self.pending.update(batch)  # written next time; newer marks are kept too
                raise

    async def _write(self, customer_ids: list[str]) -> None:
        updated_at = _UTC.to_rfc3339_ms(int(time.time() * 1000))
        pipe = self.client.pipeline(transaction=False)
        for customer_id in customer_ids:
            key = customer_key(self.prefix, customer_id)
            fields = self.lookup(customer_id)
            if fields is None:
                pipe.delete(key)
            else:
                fields["updated_at"] = updated_at
                pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
                pipe.expire(key, self.ttl_seconds)
        await pipe.execute()

    async def run(self, interval_s: float = 0.2) -> None:
        """Flush forever; on failure count it, back off, keep the pending set, retry."""
        backoff = interval_s
        while True:
            try:
                await self.flush()
                self._set_health(True)
                backoff = interval_s
            except (RedisError, OSError) as exc:
                self.metrics.redis_write_errors.inc()
                self._set_health(False, exc)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
            self.metrics.redis_pending.set(len(self.pending))
            await asyncio.sleep(backoff)

    def _set_health(self, healthy: bool, error: Exception | None = None) -> None:
        if healthy != self.healthy:
            if healthy:
                log.info("Redis writes succeed")
            else:
                log.warning("Redis write failed, retrying with backoff: %s", error)
        self.healthy = healthy
        self.metrics.redis_up.set(1 if healthy else 0)

    async def close(self) -> None:
        await self.client.aclose()
