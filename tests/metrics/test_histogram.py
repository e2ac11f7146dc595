"""The batch histogram exposes exactly what prometheus_client's Histogram would."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from stream.metrics.histogram import BatchHistogram
from stream.metrics.pipeline import LAG_BUCKETS


def exposition(registry: CollectorRegistry) -> list[str]:
    lines = generate_latest(registry).decode().splitlines()
    return sorted(line for line in lines if not line.startswith("# ") and "_created" not in line)


@given(st.lists(st.lists(st.floats(0, 1e7, allow_nan=False) | st.sampled_from(LAG_BUCKETS))))
def test_batches_expose_like_single_observations(batches):
    reference, ours = CollectorRegistry(), CollectorRegistry()
    histogram = Histogram("lag_seconds", "lag", buckets=LAG_BUCKETS, registry=reference)
    batch = BatchHistogram("lag_seconds", "lag", LAG_BUCKETS)
    ours.register(batch)
    for values in batches:
        for value in values:
            histogram.observe(value)
        batch.observe_many(values)
    assert exposition(ours) == exposition(reference)
