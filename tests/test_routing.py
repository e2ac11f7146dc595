"""Routing: the worker's murmur2 is Kafka's, as aiokafka (the reference here) computes it."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from stream.app.routing import customer_partition, murmur2


@given(st.binary(max_size=64))
def test_murmur2_is_kafkas(data):
    assert murmur2(data) == aiokafka_murmur2(data)


@given(st.text(min_size=1, max_size=40), st.integers(1, 64))
def test_a_customer_goes_where_the_default_partitioner_sends_its_key(customer_id, partitions):
    key = customer_id.encode()
    expected = DefaultPartitioner()(key, list(range(partitions)), list(range(partitions)))
    assert customer_partition(customer_id, partitions) == expected
