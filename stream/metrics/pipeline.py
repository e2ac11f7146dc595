"""The pipeline's own health: outcomes, lag, freshness, Redis and broker state."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from stream.engine import Outcome, RejectReason
from stream.metrics.histogram import BatchHistogram

# Event lag from a second to a month: live traffic, slow producers and backfills.
LAG_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400, 604800)


# A batch takes milliseconds when healthy; seconds mean the worker is falling behind.
BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class PipelineMetrics:
    """One instance per worker, registered in the worker's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "rcr_events",
            "Records by outcome and rejection reason",
            ["outcome", "reason"],
            registry=registry,
        )
        self.event_lag = BatchHistogram(
            "rcr_event_lag_seconds", "Wall clock minus event time at processing", LAG_BUCKETS
        )
        registry.register(self.event_lag)
        self.batch_seconds = Histogram(
            "rcr_batch_processing_seconds",
            "Time per batch of events: validate, count, persist",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.last_event = Gauge(
            "rcr_last_event_timestamp_seconds", "Newest event time seen", registry=registry
        )
        self.consumer_lag = Gauge(
            "rcr_consumer_lag_records",
            "Records behind the end of each assigned partition",
            ["topic", "partition"],
            registry=registry,
        )
        self.redis_write_errors = Counter(
            "rcr_redis_write_errors", "Failed Redis pipeline writes", registry=registry
        )
        self.redis_pending = Gauge(
            "rcr_redis_pending_customers",
            "Customers whose Redis lookup awaits writing",
            registry=registry,
        )
        self.ready = Gauge("rcr_ready", "1 when /readyz answers ready", registry=registry)
        self.broker_up = Gauge("rcr_broker_up", "1 when the broker answers", registry=registry)
        self.redis_up = Gauge("rcr_redis_up", "1 when Redis answers", registry=registry)
        self._start_counters_at_zero()

    def _start_counters_at_zero(self) -> None:
        # A series that first appears at N hides its first increase from rate(): every
        # outcome and reason exists from start-up on.
        for outcome in Outcome:
            if outcome is not Outcome.REJECTED:
                self.events.labels(outcome.value, "")
        for reason in RejectReason:
            self.events.labels(Outcome.REJECTED.value, reason.value)
