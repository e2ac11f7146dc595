"""The projection's connections pack commands in C: byte for byte what redis-py sends."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.connection import Connection, SSLConnection

from stream.sinks.redis_projection import pack_in_c

COMMANDS = [
    ("HSET", "rcr:customer:cust-1", "contacts_1h", "2", "last_reason", "facturación"),
    ("EXPIRE", "rcr:customer:cust-1", 2_592_000),
    ("ZADD", "rcr:top:customers:7d", 3, "cust-1"),
    ("ZADD", "rcr:bursts", 1_763_900_000_123, b'{"customer_id": "cust-1"}'),
    ("ZREMRANGEBYSCORE", "rcr:bursts", "-inf", 1_763_813_600_123),
    ("CLIENT SETINFO", "LIB-NAME", "redis-py"),
]


def test_packed_commands_are_the_bytes_redis_py_would_send():
    for url, base in (
        ("redis://localhost:1/0", Connection),
        ("rediss://localhost:1/0", SSLConnection),
    ):
        client = pack_in_c(aioredis.Redis.from_url(url))
        packed = client.connection_pool.connection_class
        assert issubclass(packed, base)
        fast, slow = packed(), base()
        for command in COMMANDS:
            assert b"".join(fast.pack_command(*command)) == b"".join(slow.pack_command(*command))
        # A pipeline: chunked differently, the same bytes on the wire.
        assert b"".join(fast.pack_commands(COMMANDS)) == b"".join(slow.pack_commands(COMMANDS))
