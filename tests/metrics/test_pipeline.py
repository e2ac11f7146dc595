"""Every outcome series of ``rcr_events_total`` exists, at zero, from start-up on."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from stream.engine import Outcome, RejectReason
from stream.metrics.pipeline import PipelineMetrics


def test_every_outcome_and_reason_starts_at_zero():
    registry = CollectorRegistry()
    PipelineMetrics(registry)
    series = {
        (sample.labels["outcome"], sample.labels["reason"]): sample.value
        for metric in registry.collect()
        if metric.name == "rcr_events"
        for sample in metric.samples
        if sample.name == "rcr_events_total"
    }
    expected = {(o.value, "") for o in Outcome if o is not Outcome.REJECTED} | {
        ("rejected", reason.value) for reason in RejectReason
    }
    assert set(series) == expected
    assert {"abandoned", "short_abandoned", "anonymous", "chained"} <= {o for o, _ in series}
    assert set(series.values()) == {0.0}
