"""Which partition a customer's contacts belong on: Kafka's default partitioner.

Producers keyed by ``customer_id`` with the default partitioner (Java clients, aiokafka,
librdkafka's ``murmur2_random``) put a customer's records there already; the worker
checks every contact against it and re-keys the others.
"""

from __future__ import annotations

import struct

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_words = struct.Struct("<I").iter_unpack


def customer_partition(customer_id: str, partitions: int) -> int:
    return (murmur2(customer_id.encode()) & 0x7FFFFFFF) % partitions


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (``Utils.murmur2``), the value aiokafka's gives, a 32-bit word at a
    time: aiokafka's own assembles every word from four indexed bytes and masks after each
    step, which made routing new customers a few percent of the worker's time."""
    length = len(data)
    h = 0x9747B28C ^ length
    whole = length & ~3
    for (k,) in _words(data[:whole]):
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ (((k ^ (k >> 24)) * _M) & _MASK)
    tail = length & 3
    if tail:
        if tail == 3:
            h ^= data[whole + 2] << 16
        if tail >= 2:
            h ^= data[whole + 1] << 8
        h = ((h ^ data[whole]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)
