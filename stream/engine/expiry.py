"""Which customers have contacts in a time range: the index that drives window expiry.

Contacts are filed by minute in buckets of ``(timestamp_ms, customer_id)`` kept sorted, so
"who has contacts in ``(a, b]``" costs a bisect per bucket, however far the clock jumps.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterator

BUCKET_MS = 60_000

Entry = tuple[int, str]


class ExpiryIndex:
    __slots__ = ("buckets", "keys")

    def __init__(self) -> None:
        self.buckets: dict[int, list[Entry]] = {}
        self.keys: list[int] = []  # sorted bucket keys

    def add(self, timestamp_ms: int, customer_id: str) -> None:
        key = timestamp_ms // BUCKET_MS
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = []
            insort(self.keys, key)
        entry = (timestamp_ms, customer_id)
        if not bucket or bucket[-1] <= entry:
            bucket.append(entry)
        else:
            insort(bucket, entry)

    def customers_between(self, after_ms: int, until_ms: int) -> Iterator[str]:
        """Customers with a contact in ``(after_ms, until_ms]`` (possibly repeated)."""
        keys = self.keys
        first = bisect_left(keys, after_ms // BUCKET_MS)
        last = bisect_right(keys, until_ms // BUCKET_MS)
        for key in keys[first:last]:
            bucket = self.buckets[key]
            # ``(t,)`` sorts before every entry at ``t``: tuples compare in C, no key function.
            start = bisect_left(bucket, (after_ms + 1,))
            stop = bisect_left(bucket, (until_ms + 1,))
            for index in range(start, stop):
                yield bucket[index][1]

    def drop_before(self, before_ms: int) -> set[str]:
        """Forget buckets wholly older than ``before_ms``; return their customers."""
        cut = bisect_left(self.keys, before_ms // BUCKET_MS)
        customers: set[str] = set()
        for key in self.keys[:cut]:
            customers.update(customer for _, customer in self.buckets.pop(key))
        del self.keys[:cut]
        return customers

    def clear(self) -> None:
        self.buckets.clear()
        self.keys.clear()
