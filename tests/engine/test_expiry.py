"""The expiry index: restored in bulk, it answers as one filled contact by contact."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from stream.engine.expiry import BUCKET_MS, ExpiryIndex

CUSTOMERS = ["a", "b", "c", "d"]
times = st.integers(-2 * BUCKET_MS, 10 * BUCKET_MS) | st.sampled_from([0, BUCKET_MS, -1])
contacts = st.lists(st.tuples(times, st.sampled_from(CUSTOMERS)), max_size=40)
queries = st.lists(
    st.one_of(
        st.tuples(st.just("between"), times, st.integers(0, 4 * BUCKET_MS)),
        st.tuples(st.just("drop"), times),
        st.tuples(st.just("add"), times, st.sampled_from(CUSTOMERS)),
    ),
    max_size=25,
)


@given(contacts=contacts, queries=queries)
def test_a_restored_index_answers_as_one_filled_contact_by_contact(contacts, queries):
    added, restored = ExpiryIndex(), ExpiryIndex()
    for timestamp, customer in contacts:
        added.add(timestamp, customer)
    restored.restore(
        np.array([timestamp for timestamp, _ in contacts], np.int64),
        np.array([CUSTOMERS.index(customer) for _, customer in contacts], np.int64),
        CUSTOMERS,
    )
    for query in queries:
        if query[0] == "between":
            _, after, length = query
            expected = sorted(added.customers_between(after, after + length))
            assert sorted(restored.customers_between(after, after + length)) == expected
        elif query[0] == "drop":
            assert restored.drop_before(query[1]) == added.drop_before(query[1])
        else:
            added.add(query[1], query[2])
            restored.add(query[1], query[2])
    everything = (-3 * BUCKET_MS, 12 * BUCKET_MS)
    assert sorted(restored.customers_between(*everything)) == sorted(
        added.customers_between(*everything)
    )
    assert restored.keys == added.keys
