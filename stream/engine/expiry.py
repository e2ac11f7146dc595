"""Which customers have contacts in a time range: the index that drives window expiry.

Contacts are filed by minute: a bucket holds the times of its contacts, sorted, and beside
them the customer of each, so "who has contacts in ``(a, b]``" costs a bisect per bucket,
however far the clock jumps. Two parallel lists rather than a ``(time, customer)`` tuple per
contact: two list slots a contact, no tuple. A rebuild files millions of restored contacts
at once (``restore``): sorted arrays, from which a bucket's lists are made when it is
first needed.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

BUCKET_MS = 60_000

Int64Array = npt.NDArray[np.int64]
Int32Array = npt.NDArray[np.int32]
ObjectArray = npt.NDArray[np.object_]


class _Bucket:
    __slots__ = ("customers", "times")

    def __init__(self, times: list[int], customers: list[str]) -> None:
        self.times = times  # sorted
        self.customers = customers  # customers[i] had a contact at times[i]


class _Restored:
    """Contacts filed at once by ``ExpiryIndex.restore``, as sorted arrays, until their
    bucket is first needed: building every bucket's lists took a rebuild a second per
    million customers, and most buckets are needed only days later, or never (dropped)."""

    __slots__ = ("customer_ids", "owners", "spans", "times")

    def __init__(
        self,
        times: Int64Array,
        owners: Int32Array,
        customer_ids: ObjectArray,
        spans: dict[int, tuple[int, int]],
    ) -> None:
        self.times = times  # sorted
        self.owners = owners  # customer_ids[owners[i]] had a contact at times[i]
        self.customer_ids = customer_ids
        self.spans = spans  # bucket key -> [start, stop) in the arrays, until taken

    def bucket(self, key: int) -> _Bucket:
        start, stop = self.spans.pop(key)
        return _Bucket(self.times[start:stop].tolist(), self._customers(start, stop))

    def customers(self, key: int) -> list[str]:
        return self._customers(*self.spans.pop(key))

    def _customers(self, start: int, stop: int) -> list[str]:
        customers: list[str] = self.customer_ids[self.owners[start:stop]].tolist()
        return customers


_NOTHING_RESTORED = _Restored(
    np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.object_), {}
)


class ExpiryIndex:
    __slots__ = ("_restored", "buckets", "keys")

    def __init__(self) -> None:
        self.buckets: dict[int, _Bucket] = {}
        self.keys: list[int] = []  # sorted keys of the buckets and of the restored ones
        self._restored = _NOTHING_RESTORED

    def add(self, timestamp_ms: int, customer_id: str) -> None:
        key = timestamp_ms // BUCKET_MS
        bucket = self.buckets.get(key)
        if bucket is None:
            if key in self._restored.spans:
                bucket = self._restored_bucket(key)
            else:
                bucket = self.buckets[key] = _Bucket([], [])
                insort(self.keys, key)
        times = bucket.times
        if not times or times[-1] <= timestamp_ms:
            times.append(timestamp_ms)
            bucket.customers.append(customer_id)
        else:
            at = bisect_right(times, timestamp_ms)
            times.insert(at, timestamp_ms)
            bucket.customers.insert(at, customer_id)

    def restore(self, timestamps: Int64Array, owners: Int64Array, customer_ids: list[str]) -> None:
        """File every contact at once into an empty index: the contact at ``timestamps[i]``
        is ``customer_ids[owners[i]]``'s, in any order (as a rebuild finds them, customer
        by customer)."""
        if not len(timestamps):
            return
        order = np.argsort(timestamps)
        times = timestamps[order]
        keys = times // BUCKET_MS
        starts = np.flatnonzero(np.diff(keys, prepend=keys[:1] - 1))
        stops = np.append(starts[1:], len(times))
        self.keys = keys[starts].tolist()
        spans = zip(starts.tolist(), stops.tolist(), strict=True)
        self._restored = _Restored(
            times,
            owners[order].astype(np.int32),
            np.array(customer_ids, dtype=object),
            dict(zip(self.keys, spans, strict=True)),
        )

    def customers_between(self, after_ms: int, until_ms: int) -> Iterator[str]:
        """Customers with a contact in ``(after_ms, until_ms]`` (possibly repeated)."""
        keys, buckets = self.keys, self.buckets
        first = bisect_left(keys, after_ms // BUCKET_MS)
        last = bisect_right(keys, until_ms // BUCKET_MS)
        for key in keys[first:last]:
            bucket = buckets.get(key) or self._restored_bucket(key)
            start = bisect_right(bucket.times, after_ms)
            stop = bisect_right(bucket.times, until_ms)
            yield from bucket.customers[start:stop]

    def drop_before(self, before_ms: int) -> set[str]:
        """Forget buckets wholly older than ``before_ms``; return their customers."""
        cut = bisect_left(self.keys, before_ms // BUCKET_MS)
        customers: set[str] = set()
        for key in self.keys[:cut]:
            bucket = self.buckets.pop(key, None)
            customers.update(self._restored.customers(key) if bucket is None else bucket.customers)
        del self.keys[:cut]
        self._forget_restored_if_taken()
        return customers

    def clear(self) -> None:
        self.buckets.clear()
        self.keys.clear()
        self._restored = _NOTHING_RESTORED

    def _restored_bucket(self, key: int) -> _Bucket:
        bucket = self.buckets[key] = self._restored.bucket(key)
        self._forget_restored_if_taken()
        return bucket

    def _forget_restored_if_taken(self) -> None:
        if not self._restored.spans:
            self._restored = _NOTHING_RESTORED  # its arrays are garbage now
