"""Per-customer lookups in Redis (contract section 4), written in batches by a server-side
script, with the drill-down beside them: top customers per rolling window and recent bursts.

Redis is a projection, never the source of truth: the projection only remembers *which*
customers changed and asks the engine for their current view when it writes. A Redis
outage therefore costs memory proportional to the customers touched, loses nothing, and
heals itself when Redis answers again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import chain
from typing import Any

import hiredis
import msgspec
import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from stream.engine.drilldown import Burst
from stream.engine.lookup import BURSTS_KEPT_MS, CustomerView
from stream.engine.periods import utc_rfc3339_ms
from stream.metrics.pipeline import PipelineMetrics
from stream.settings import Settings

log = logging.getLogger(__name__)

ViewOf = Callable[[str], CustomerView | None]  # None: the customer has no state any more
BATCH = 2_000
# Customers per script call: Redis runs a script to its end before serving anyone else,
# and this many take it a millisecond or two (docs/BENCHMARKS.md).
CHUNK = 100
MAX_BACKOFF_S = 10.0
# A batch's scripts must be answered within this; Redis runs each in a millisecond or two,
# so only a hung server or network reaches it.
WRITE_TIMEOUT_S = 5.0


def redis_tls_options(settings: Settings) -> dict[str, str]:
    """The TLS files for a ``rediss://`` URL, as keyword arguments of redis-py's ``from_url``
    (every Redis client takes them: the worker's projection, lookup, rebuild-redis, dev).
    The server certificate is always verified; the password travels in the URL."""
    files = {
        "ssl_ca_certs": settings.redis_ssl_cafile,
        "ssl_certfile": settings.redis_ssl_certfile,
        "ssl_keyfile": settings.redis_ssl_keyfile,
    }
    return {name: path for name, path in files.items() if path}


class _PackedInC:
    """Commands packed by hiredis (C) instead of redis-py's Python packer: the same bytes,
    about ten times faster, which the worker's profile showed as a quarter of its time."""

    def pack_command(self, *args: Any) -> list[bytes]:
        if isinstance(args[0], str) and " " in args[0]:  # "CLIENT SETINFO" is two words
            args = (*args[0].split(), *args[1:])
        return [hiredis.pack_command(args)]


def pack_in_c(client: aioredis.Redis) -> aioredis.Redis:
    """Make ``client``'s connections (plain or TLS) pack commands with hiredis."""
    pool = client.connection_pool
    base = pool.connection_class
    pool.connection_class = type(f"PackedInC{base.__name__}", (_PackedInC, base), {})
    return client


def customer_key(prefix: str, customer_id: str) -> str:
    return f"{prefix}customer:{customer_id}"


def top_customers_key(prefix: str, window: str) -> str:
    return f"{prefix}top:customers:{window}"


def bursts_key(prefix: str) -> str:
    return f"{prefix}bursts"


def top_reasons_key(prefix: str) -> str:
    return f"{prefix}top:reasons"


def burst_text(burst: Burst) -> str:
    """A burst as the bursts set's member: a JSON object."""
    return orjson.dumps(
        {
            "customer_id": burst.customer_id,
            "contacts": burst.contacts,
            "minutes": burst.span_ms / 60_000,
            "at": utc_rfc3339_ms(burst.at_ms),
            "channel": burst.channel,
            "reason": burst.reason,
        }
    ).decode()


# One script call writes a chunk of customers. Through a redis-py pipeline every command
# (several per customer) cost Python work to pack, send and read its reply: a sixth of the
# worker's time. The chunk travels as one MessagePack argument instead, packed in C by
# msgspec and unpacked in C by Redis's cmsgpack.
# KEYS: each window's top-customers set, the bursts set, then the lookup hash of every
# written customer and of every customer gone, in that order.
# ARGV: the window count, the lookups' TTL, whether to trim the drill-down (once per
# batch, after its last chunk), the top-set size, the oldest burst score kept, the bursts'
# TTL, and the chunk: [written, gone], where a written customer is [id, its hash fields
# and values, contacts per window (none with under two contacts: in no top set), its
# bursts as score, member, score, member, ...] and gone lists ids.
WRITE_LOOKUPS = """
local windows, ttl = tonumber(ARGV[1]), ARGV[2]
local written, gone = unpack(cmsgpack.unpack(ARGV[7]))
local bursts = KEYS[windows + 1]
local added, removed, found = {}, {}, {}
for w = 1, windows do added[w], removed[w] = {}, {} end

-- unpack() is bounded by Lua's stack: long argument lists go in slices.
local function call_in_slices(command, key, items)
  for first = 1, #items, 1000 do
    redis.call(command, key, unpack(items, first, math.min(first + 999, #items)))
  end
end

for i, customer in ipairs(written) do
  local key, id = KEYS[windows + 1 + i], customer[1]
  redis.call('HSET', key, unpack(customer[2]))
  redis.call('EXPIRE', key, ttl)
  for w, contacts in ipairs(customer[3]) do
    if contacts >= 2 then  -- a repeat customer in this window
      local into = added[w]
      into[#into + 1], into[#into + 2] = contacts, id
    else
      removed[w][#removed[w] + 1] = id
    end
  end
  for _, item in ipairs(customer[4]) do found[#found + 1] = item end
end
for i, id in ipairs(gone) do
  redis.call('DEL', KEYS[windows + 1 + #written + i])
  for w = 1, windows do removed[w][#removed[w] + 1] = id end
end

-- A chunk holds each customer once, so these commute with the writes above.
for w = 1, windows do
  call_in_slices('ZADD', KEYS[w], added[w])
  call_in_slices('ZREM', KEYS[w], removed[w])
end
call_in_slices('ZADD', bursts, found)  -- same burst, same member: adding it again is a no-op

if ARGV[3] == '1' then  -- keep the drill-down bounded: the top N per set, a day of bursts
  local top_size = tonumber(ARGV[4])
  for w = 1, windows do
    redis.call('ZREMRANGEBYRANK', KEYS[w], 0, -top_size - 1)
    redis.call('EXPIRE', KEYS[w], ttl)
  end
  redis.call('ZREMRANGEBYSCORE', bursts, '-inf', ARGV[5])
  redis.call('ZREMRANGEBYRANK', bursts, 0, -top_size - 1)
  redis.call('EXPIRE', bursts, ARGV[6])
end
"""


class _Chunk:
    """The customers of one script call, as ``WRITE_LOOKUPS`` reads them."""

    def __init__(self, prefix: str, updated_at: str) -> None:
        self.prefix = prefix
        self.updated_at = updated_at
        self.written: list[tuple[Any, ...]] = []
        self.written_keys: list[str] = []
        self.gone: list[str] = []
        self.gone_keys: list[str] = []

    def add(self, customer_id: str, view: CustomerView | None) -> None:
        key = customer_key(self.prefix, customer_id)
        if view is None:
            self.gone.append(customer_id)
            self.gone_keys.append(key)
            return
        fields = [*chain.from_iterable(view.fields.items()), "updated_at", self.updated_at]
        # With one contact ever, the customer is in no top set.
        counts = view.window_contacts if view.contacts >= 2 else ()
        bursts = [item for burst in view.bursts for item in (burst.at_ms, burst_text(burst))]
        self.written.append((customer_id, fields, counts, bursts))
        self.written_keys.append(key)

    def packed(self) -> bytes:
        return msgspec.msgpack.encode((self.written, self.gone))


class RedisProjection:
    """Writes the pending customers' views; ``windows`` names the rolling windows in the
    order of ``CustomerView.window_contacts``."""

    def __init__(
        self,
        url: str,
        prefix: str,
        windows: Sequence[str],
        ttl_seconds: int,
        view_of: ViewOf,
        metrics: PipelineMetrics,
        top_size: int = 100,
        tls: Mapping[str, Any] | None = None,
    ) -> None:
        options = dict(socket_connect_timeout=2, **(tls or {}))
        # For the HTTP views' reads: a timeout per command.
        self.client = aioredis.Redis.from_url(url, socket_timeout=5, **options)
        # For the batches: one timeout per script call (WRITE_TIMEOUT_S), and commands
        # packed in C: both showed in the worker's profile.
        self._writer = pack_in_c(aioredis.Redis.from_url(url, socket_timeout=None, **options))
        self.prefix = prefix
        self.windows = tuple(windows)
        self.ttl_seconds = ttl_seconds
        self.view_of = view_of
        self.metrics = metrics
        self.top_size = top_size
        self._drilldown_keys = (
            *(top_customers_key(prefix, window) for window in self.windows),
            bursts_key(prefix),
        )
        self._write_lookups = self._writer.register_script(WRITE_LOOKUPS)
        # Customers to write, oldest mark first (a dict keeps insertion order): a projection
        # that falls behind writes in arrival order, instead of leaving some customers
        # to wait behind every newer one as popping a set would.
        self.pending: dict[str, None] = {}
        self.healthy = False

    def mark(self, customer_ids: Iterable[str]) -> None:
        self.pending.update(dict.fromkeys(customer_ids))

    async def flush(self) -> None:
        """Write every pending customer; raises ``RedisError``/``OSError`` on failure."""
        while self.pending:
            customer_ids, self.pending = list(self.pending), {}
            for start in range(0, len(customer_ids), BATCH):
                try:
                    await self._write(customer_ids[start : start + BATCH])
                except BaseException:
                    # Written next time, first; marks made meanwhile come after them.
                    unwritten = dict.fromkeys(customer_ids[start:])
                    self.pending = unwritten | self.pending
                    raise

    async def _write(self, customer_ids: list[str]) -> None:
        """One round trip for up to ``BATCH`` customers: their chunks' script calls in one
        pipeline. Awaiting each chunk instead let a batch of contacts run between two
        chunks, and a projection behind at 100 customers a batch never caught up."""
        now_ms = int(time.time() * 1000)
        updated_at = utc_rfc3339_ms(now_ms)
        pipeline = self._writer.pipeline(transaction=False)
        for start in range(0, len(customer_ids), CHUNK):
            chunk = _Chunk(self.prefix, updated_at)
            for customer_id in customer_ids[start : start + CHUNK]:
                chunk.add(customer_id, self.view_of(customer_id))
            keys = [*self._drilldown_keys, *chunk.written_keys, *chunk.gone_keys]
            trim = start + CHUNK >= len(customer_ids)  # once per batch, after its last chunk
            args: list[int | bytes] = [
                len(self.windows),
                self.ttl_seconds,
                int(trim),
                self.top_size,
                now_ms - BURSTS_KEPT_MS,
                BURSTS_KEPT_MS // 1000,
                chunk.packed(),
            ]
            # Queued, not sent: the pipeline loads the script first if Redis lacks it
            # (after a restart or SCRIPT FLUSH).
            await self._write_lookups(keys, args, client=pipeline)
        # TimeoutError is an OSError: retried.
        async with asyncio.timeout(WRITE_TIMEOUT_S):
            await pipeline.execute()

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
        await self._writer.aclose()
