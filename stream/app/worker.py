"""The live worker: Faust consumes contacts, the engine counts, the outputs follow.

contacts ──► batch ──► ContactProcessor ──► PartitionEngines (one Engine per partition)
               │ misrouted → <app>-contacts-by-customer ─┘        │
               └ rejected  → contacts-dlq                        ├─► CustomerTable (changelog)
                                                                 ├─► RedisProjection
                                                                 ├─► /metrics, /rates
                                                                 └─► <app>-partition-figures
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection
from itertools import chain
from typing import Any

import faust
from aiokafka.errors import KafkaError
from faust.sensors.prometheus import setup_prometheus_sensors
from faust.types import TP
from prometheus_client import CollectorRegistry

from stream.app.batching import BatchRoute, Fetched, use_batching_consumer
from stream.app.cluster import (
    decode_partition_figures,
    encode_partition_figures,
)
from stream.app.customer_base import decode_customer_base
from stream.app.denominators import Denominators
from stream.app.follower import CompactedTopicView
from stream.app.health import Health
from stream.app.heap import long_lived_state
from stream.app.kafka_options import client_options, faust_credentials
from stream.app.partitions import DefinitionFigures, PartitionEngines, sum_definition_figures
from stream.app.processing import BatchResult, ContactProcessor
from stream.app.recovery import recover_to_fetched_highwaters
from stream.app.routing import customer_partition
from stream.app.state import CustomerTable
from stream.app.views import register_views
from stream.durations import format_duration
from stream.engine import EngineConfig, PeriodKind
from stream.engine.drilldown import ReasonTrend, repeat_reasons
from stream.engine.exclusions import ExclusionPolicy
from stream.engine.lookup import CustomerView, Lookups
from stream.metrics.figures import FiguresCollector, FiguresSnapshot
from stream.metrics.pipeline import PipelineMetrics
from stream.native import is_compiled
from stream.settings import Settings
from stream.sinks.redis_projection import RedisProjection, redis_tls_options

log = logging.getLogger(__name__)

TICK_S = 1.0
# Records per fetch handed to ``handle``: big enough to amortise the per-batch work, small
# enough that one batch does not hold the event loop (timers, /metrics) for long.
BATCH_MAX = 2_000


def wall_ms() -> int:
    return int(time.time() * 1000)


class ContactsWorker:
    """Everything one worker process runs, wired around one Faust app."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = self._make_app(settings)
        self.rekeyed_topic_name = f"{settings.app_id}-contacts-by-customer"
        # The contacts topics reach ``handle`` a whole fetch at a time (see batching.py).
        route = BatchRoute(
            frozenset({settings.topic, self.rekeyed_topic_name}),
            self.handle,
            self._changelog_delivered,
        )
        use_batching_consumer(self.app, route)
        # One writer at a time: changelog records of a customer must go out in order.
        self._persisting = asyncio.Lock()
        self.registry = CollectorRegistry()
        self.metrics = PipelineMetrics(self.registry)
        config = EngineConfig.from_settings(settings)
        self.engines = PartitionEngines(config, wall_ms())
        self.lookups = Lookups(
            config.windows, config.repeat_interval_ms, settings.burst_rule, config.all_definitions
        )
        self.processor = ContactProcessor(
            self.engines,
            settings.max_record_bytes,
            self.partition_of,
            ExclusionPolicy.from_settings(settings),
        )
        self.health = Health(self.app, self.metrics, client_options(settings))
        recover_to_fetched_highwaters(client_options(settings))
        self._declare_topics()
        self.table = self._make_table()
        ttl_s = max(settings.window_ms.values()) // 1000
        self.redis = RedisProjection(
            settings.redis_url,
            settings.redis_prefix,
            tuple(config.windows),
            ttl_s,
            self.customer_view,
            self.metrics,
            settings.top_customers,
            tls=redis_tls_options(settings),
        )
        self.customer_base = CompactedTopicView(
            settings.customer_base_topic, decode_customer_base, client_options(settings)
        )
        self.partition_figures = CompactedTopicView(
            self.figures_topic.get_topic_name(),
            decode_partition_figures,
            client_options(settings),
        )
        self.denominators = Denominators(
            settings, client_options(settings), self.registry, wall_ms()
        )
        self._published: dict[int, bytes] = {}
        self.window_names = (
            *settings.window_names,
            *(kind.value for kind in PeriodKind),
            *(f"previous_{kind.value}" for kind in PeriodKind),
        )
        # Next offset to process per (topic, partition), for the consumer-lag gauge.
        self._next_offsets: dict[tuple[str, int], int] = {}
        self.registry.register(FiguresCollector(self.snapshot))
        setup_prometheus_sensors(
            self.app, pattern="/metrics", registry=self.registry, name_prefix="faust"
        )
        self._register()

    # -- construction -------------------------------------------------------------------

    @staticmethod
    def _make_app(settings: Settings) -> faust.App:
        return faust.App(
            settings.app_id,
            broker=settings.broker,
            store="memory://",
            datadir=settings.state_dir,
            web_enabled=True,
            web_port=settings.web_port,
            web_bind=settings.web_host,
            web_host=settings.web_host,
            topic_partitions=settings.topic_partitions,
            # At-least-once plus idempotent state (dedup by contact_id): exactly_once has
            # open bugs in faust-streaming (#517, #323, #440).
            processing_guarantee="at_least_once",
            consumer_auto_offset_reset="earliest",
            broker_session_timeout=settings.broker_session_timeout,
            broker_heartbeat_interval=settings.broker_heartbeat_interval,
            broker_request_timeout=max(30.0, settings.broker_session_timeout),
            broker_commit_interval=settings.commit_interval,
            table_standby_replicas=0,
            # Changelog records of a batch share produce requests instead of one each.
            producer_linger=0.01,
            producer_max_batch_size=256 * 1024,
            broker_max_poll_records=BATCH_MAX,
            web_access_log=None,
            broker_credentials=faust_credentials(settings),
        )

    def _declare_topics(self) -> None:
        app, settings = self.app, self.settings
        partitions = settings.topic_partitions
        self.contacts_topic = _raw_topic(app, settings.topic, partitions)
        self.rekeyed_topic = _raw_topic(app, self.rekeyed_topic_name, partitions, internal=True)
        self.dlq_topic = _raw_topic(app, settings.dlq_topic, partitions)
        self.figures_topic = _raw_topic(
            app, f"{settings.app_id}-partition-figures", 1, compacting=True, internal=True
        )
        self.base_topic = _raw_topic(app, settings.customer_base_topic, 1, compacting=True)

    def _make_table(self) -> CustomerTable:
        table = CustomerTable(
            self.app,
            name="customers",
            default=None,
            partitions=self.settings.topic_partitions,
            beacon=self.app.tables.beacon,
            client_options=client_options(self.settings),
            dimensions=self.settings.dimension_names,
            help="per-customer contact timelines",
        )
        self.app.tables.add(table)
        return table

    def _register(self) -> None:
        app = self.app
        # Subscribed like an agent's topics, but consumed by ``handle`` (no agent).
        app.topics.add(self.contacts_topic)
        app.topics.add(self.rekeyed_topic)
        app.timer(TICK_S)(self._tick)
        app.task(self._start_background)
        # Faust types its signal receivers narrower than its own docs use them.
        app.on_partitions_revoked.connect(self._on_partitions_revoked)  # type: ignore[arg-type]
        app.on_rebalance_complete.connect(self._on_rebalance_complete)  # type: ignore[arg-type]
        register_views(self)

    # -- the hot path -------------------------------------------------------------------

    def partition_of(self, customer_id: str) -> int:
        return customer_partition(customer_id, self.settings.topic_partitions)

    async def handle(self, fetched: Fetched) -> Collection[TP]:
        """One fetch of the contacts topics; returns the partitions left to their new
        owner (their offsets are not committed here)."""
        with self.metrics.batch_seconds.time():
            return await self._handle(fetched)

    async def _handle(self, fetched: Fetched) -> Collection[TP]:
        not_ours = {tp for tp, _ in fetched if self.engines.engine(tp.partition) is None}
        records = chain.from_iterable(consumed for _, consumed in fetched)
        result = self.processor.process(records, wall_ms())
        await self._forward(result)
        self._count(result)
        for tp, consumed in fetched:
            self._next_offsets[(tp.topic, tp.partition)] = consumed[-1].offset + 1
        await self._persist_changes()
        return not_ours

    async def _forward(self, result: BatchResult) -> None:
        for customer_id, record in result.misrouted:
            await self.rekeyed_topic.send(
                key=customer_id.encode(),
                value=record.value,
                partition=self.partition_of(customer_id),
            )
        for letter in result.dead_letters:
            record = letter.record
            await self.dlq_topic.send(
                key=record.key,
                value=record.value,
                headers=[
                    ("rcr-reject-reason", letter.reason.encode()),
                    ("rcr-source-topic", self.settings.topic.encode()),
                    ("rcr-source-partition", str(record.partition).encode()),
                    ("rcr-source-offset", str(record.offset).encode()),
                ],
            )

    def _count(self, result: BatchResult) -> None:
        for (outcome, reason), count in result.outcomes.items():
            self.metrics.events.labels(outcome, reason).inc(count)
        self.metrics.event_lag.observe_many(result.lags_s)
        newest = self.engines.newest_event_ms
        if newest is not None:
            self.metrics.last_event.set(newest / 1000)

    async def _persist_changes(self) -> None:
        """Changed timelines to the table (one changelog record per customer per batch),
        and their customers to the Redis projection."""
        async with self._persisting:
            for partition, engine in self.engines:
                changed = engine.take_changed()
                if changed:
                    timelines = engine.customers
                    try:
                        await self.table.write(partition, ((c, timelines.get(c)) for c in changed))
                    except KafkaError:
                        engine.changed |= changed  # written whole next time
                        raise
                    self.redis.mark(changed)

    async def _changelog_delivered(self) -> None:
        """Before offsets are committed: the changelog records of what they cover are in
        (a batch's offsets are marked only after its writes were handed to the producer)."""
        await self.table.delivered()

    # -- time ---------------------------------------------------------------------------

    async def _tick(self) -> None:
        if not self.health.recovered:
            return
        self.engines.advance(wall_ms())
        try:
            await self._persist_changes()
        except KafkaError as exc:  # the broker is away: the next tick tries again
            log.warning("expiries not written to the table yet: %r", exc)
        await self._publish_partition_figures()
        self._update_consumer_lag()

    async def _publish_partition_figures(self) -> None:
        for partition, engine in self.engines:
            encoded = encode_partition_figures(engine.definition_figures())
            if self._published.get(partition) != encoded:
                await self.figures_topic.send(key=str(partition).encode(), value=encoded)
                self._published[partition] = encoded

    def _update_consumer_lag(self) -> None:
        """Records behind the end, per partition of both topics the agent consumes."""
        consumer = self.app.consumer
        consumed = {self.settings.topic, self.rekeyed_topic.get_topic_name()}
        for tp in consumer.assignment():
            next_offset = self._next_offsets.get((tp.topic, tp.partition))
            if tp.topic not in consumed or next_offset is None:
                continue  # nothing consumed there yet: the lag is not known
            highwater = consumer.highwater(tp)
            if highwater is not None:
                lag = max(0, highwater - next_offset)
                self.metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(lag)

    # -- rebalancing --------------------------------------------------------------------

    async def _on_partitions_revoked(self, sender: Any, revoked: set[TP], **_: Any) -> None:
        self.health.recovered = False
        # A write in progress (the timer's) finishes and is flushed before the partitions
        # go: their next owner must find it in the changelog.
        async with self._persisting:
            self.engines.drop({tp.partition for tp in revoked if tp.topic == self.settings.topic})
            await self.table.delivered()

    async def _on_rebalance_complete(self, sender: Any, **_: Any) -> None:
        """Recovery is over and streams are about to resume: rebuild the new partitions."""
        assigned = {
            tp.partition for tp in self.app.consumer.assignment() if tp.topic == self.settings.topic
        }
        self.engines.drop(set(self.engines.engines) - assigned)
        new = sorted(assigned - set(self.engines.engines))
        with long_lived_state():
            for partition, timelines in self.table.timelines_by_partition(new).items():
                engine = self.engines.restore(partition, timelines)
                self.redis.mark(engine.customers)
                log.info("partition %d rebuilt: %d customers", partition, len(engine.customers))
        self.health.recovered = True

    # -- background ---------------------------------------------------------------------

    async def _start_background(self) -> None:
        _quiet_client_loggers(self.settings.log_level)
        log.info("engine runs %s", "compiled (mypyc)" if is_compiled() else "as plain Python")
        for topic in (self.contacts_topic, self.dlq_topic, self.figures_topic, self.base_topic):
            await topic.maybe_declare()
        await self.health.check_partitions(
            self.settings.topic, self.settings.topic_partitions, "RCR_TOPIC_PARTITIONS"
        )
        tasks = [
            self.redis.run(),
            self.customer_base.run(),
            self.partition_figures.run(),
            self.health.run(),
            self.denominators.run(),
        ]
        await asyncio.gather(*tasks)

    # -- reading ------------------------------------------------------------------------

    def customer_view(self, customer_id: str) -> CustomerView | None:
        found = self.engines.find(customer_id)
        if found is None:
            return None
        engine, timeline = found
        return self.lookups.view(customer_id, timeline, engine.now_ms)

    def top_reasons(self, limit: int = 20) -> list[ReasonTrend]:
        """Reasons customers come back for today, against yesterday (cluster-wide)."""
        cluster = self.cluster_figures().get(self.engines.headline().name, {})
        return repeat_reasons(cluster.get("day", {}), cluster.get("previous_day", {}), limit)

    def snapshot(self) -> FiguresSnapshot:
        base = dict(self.customer_base.latest)
        if "all" not in base and self.settings.customer_base:
            base["all"] = self.settings.customer_base
        definitions = self.engines.config.all_definitions
        return FiguresSnapshot(
            local=self.engines.definition_figures(),
            cluster=self.cluster_figures(),
            headline=self.engines.headline().name,
            every_definition=len(definitions) > 1,
            customer_base=base,
            windows=self.window_names,
            maturity=self.engines.maturity(),
            definitions={
                d.name: (d.matching_key.value, format_duration(d.repeat_interval_ms))
                for d in definitions
            },
            denominators=self.denominators.values(wall_ms()),
        )

    def cluster_figures(self) -> DefinitionFigures:
        """Every definition's figures over every partition of the group."""
        latest = dict(self.partition_figures.latest)
        # Our own partitions are fresher in memory than on the topic.
        for partition, engine in self.engines:
            latest[str(partition)] = engine.definition_figures()
        return sum_definition_figures(latest.values())


def _quiet_client_loggers(level: str) -> None:
    """Kafka client and Faust loggers at the configured level: a DEBUG-enabled logger on
    the per-record path builds a LogRecord per record even when no handler prints it."""
    for name in ("", "aiokafka", "faust", "mode", "kafka"):
        logging.getLogger(name).setLevel(level.upper())


def _raw_topic(
    app: faust.App,
    name: str,
    partitions: int,
    *,
    internal: bool = False,
    compacting: bool | None = None,
) -> faust.TopicT:
    """A topic of raw bytes: records pass through (and to the DLQ) unchanged."""
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
        internal=internal,
        compacting=compacting,
    )
