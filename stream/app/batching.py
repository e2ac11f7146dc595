"""Whole fetched batches of the contacts topics to the worker, past Faust's per-record path.

Faust hands every record to its agents one by one: a ``ConsumerMessage``, a
``wait_first`` with four tasks, a channel queue, an ``Event``, an ack and several sensor
calls each; at a few thousand records a second that path is the whole CPU. The
``BatchingConsumer`` below is Faust's aiokafka consumer with one change: records of the
*batch topics* go to one coroutine per fetch, as the lists aiokafka fetched. Everything
else stays Faust's: group membership, assignment, flow control during rebalances, table
changelogs and recovery, commits, timers, sensors and web views. Records of other topics
(none in this worker, but a table's standby or an agent could add some) still take the
per-record path.

At-least-once: a batch's offsets become committable only once its handler returned, and
only if no rebalance happened meanwhile (a changed generation drops them: the records are
fetched again from the committed offset, and the state is idempotent). Faust's commit
then runs as usual (producer flushed first) and, before any offset is committed, every
changelog send started so far must have been delivered (``before_commit``).
"""

from __future__ import annotations

import asyncio
from collections.abc import (
    Awaitable,
    Callable,
    Collection,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from functools import partial
from time import monotonic
from typing import Any, cast

import faust
from aiokafka.structs import ConsumerRecord
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, AppT

# One fetch: per (topic, partition) its records, in offset order.
Fetched = Sequence[tuple[TP, Sequence[ConsumerRecord]]]
# Handles a fetch; returns the partitions it left alone (not ours any more): their
# offsets must not be committed by this worker.
BatchHandler = Callable[[Fetched], Awaitable[Collection[TP]]]
BeforeCommit = Callable[[], Awaitable[None]]


class ProcessedOffsets:
    """Next offset to commit per partition, for records whose batch was handled."""

    def __init__(self) -> None:
        self._next: dict[TP, int] = {}

    def processed(self, fetched: Fetched, left: Collection[TP] = ()) -> int:
        """Mark a handled batch but for the partitions ``left`` alone; returns how many
        records were marked."""
        count = 0
        for tp, records in fetched:
            if records and tp not in left:
                self._next[tp] = max(self._next.get(tp, 0), records[-1].offset + 1)
                count += len(records)
        return count

    def pending(self) -> Iterator[TP]:
        return iter(list(self._next))

    def take(self, tp: TP) -> int | None:
        return self._next.pop(tp, None)

    def forget(self, tps: Iterable[TP]) -> None:
        for tp in tps:
            self._next.pop(tp, None)


def unread(records: Sequence[ConsumerRecord], read_offset: int | None) -> Sequence[ConsumerRecord]:
    """The records Faust would deliver after ``read_offset`` (its rule: offset >= read)."""
    if read_offset is None or not records or records[0].offset >= read_offset:
        return records
    return [record for record in records if record.offset >= read_offset]


@dataclass(frozen=True)
class BatchRoute:
    """Which topics go to the batch handler, and what must hold before a commit."""

    topics: frozenset[str]
    on_batch: BatchHandler
    before_commit: BeforeCommit


# How long a fetch may wait for records. Faust fixes it at 1.5 s, which a broker that
# answers a fetch only when the wait ends (the embedded one does) adds to every record's
# latency when traffic is light; on Kafka it only bounds how often an idle consumer asks.
FETCH_MAX_WAIT_MS = 100


class ShortFetchWaitThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read when the consumer starts
        return consumer


class BatchingConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer that hands whole fetches of the batch topics over."""

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return ShortFetchWaitThread(self, loop=self.loop, beacon=self.beacon)

    def __post_init__(self) -> None:
        super().__post_init__()
        route: BatchRoute = self.transport.route  # type: ignore[attr-defined]
        self.batch_topics = route.topics
        self.on_batch = route.on_batch
        self.before_commit = route.before_commit
        self._processed = ProcessedOffsets()
        self._in_flight: asyncio.Future[Collection[TP]] | None = None

    # -- fetching -------------------------------------------------------------------------

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - Faust loop
        """Faust's fetch loop (``Consumer._drain_messages``), one fetch at a time."""
        consumer_stopped = self._stopped.is_set
        fetcher_stopped = fetcher._stopped.is_set
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                self.diag.set_flag(CONSUMER_FETCHING)
                records, active = await self._wait_next_records(timeout=1.0)
                generation = self.app.consumer_generation_id
                await self.sleep(0)
                if records and not self.should_stop:
                    await self._deliver(records, active, generation)
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _deliver(
        self,
        records: Mapping[TP, list[ConsumerRecord]],
        active: set[TP] | None,
        generation: int,
    ) -> None:
        if not self.flow_active:
            # As Faust does: a fetch that returns while a rebalance stopped the flow is
            # dropped, and the positions go back to the committed offsets.
            await self.perform_seek()
            return
        batch: list[tuple[TP, Sequence[ConsumerRecord]]] = []
        singles: list[tuple[TP, Sequence[ConsumerRecord]]] = []
        for tp, fetched in records.items():
            if active is not None and tp not in active and tp not in self._buffered_partitions:
                continue
            self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            fresh = unread(fetched, self._read_offset[tp])
            if fresh:
                (batch if tp.topic in self.batch_topics else singles).append((tp, fresh))
        if batch:
            await self._handle_batch(batch, generation)
        for tp, fresh in singles:
            await self._deliver_one_by_one(tp, fresh, generation)

    async def _handle_batch(self, batch: Fetched, generation: int) -> None:
        await self.app.flow_control.acquire()
        await self.app.producer.buffer.wait_until_ebb()
        if not (self.flow_active and self._same_generation(generation)):
            return  # a rebalance came between fetch and now: fetched again after it
        for tp, records in batch:
            self._read_offset[tp] = records[-1].offset
        # Shielded: a handler stopped halfway could leave changes taken from the engines but
        # not yet written; a rebalance or a shutdown waits for it instead (``wait_empty``),
        # and its offsets are marked when it ends, even after this loop was cancelled.
        in_flight = self._in_flight = asyncio.ensure_future(self.on_batch(batch))
        in_flight.add_done_callback(partial(self._batch_done, batch, generation))
        await asyncio.shield(in_flight)
        commit_every = self._commit_every
        if commit_every is not None and self._n_acked >= commit_every:
            self._n_acked = 0
            await self.commit()

    def _batch_done(
        self, batch: Fetched, generation: int, in_flight: asyncio.Future[Collection[TP]]
    ) -> None:
        if self._in_flight is in_flight:
            self._in_flight = None
        if in_flight.cancelled() or in_flight.exception() is not None:
            return  # not handled: fetched again from the committed offset
        # Handled completely, in the generation it was fetched in: its state is written
        # (or being written: ``before_commit``), so its offsets may be committed, even
        # by the commit Faust makes while revoking the partitions.
        if self._same_generation(generation):
            self._n_acked += self._processed.processed(batch, in_flight.result())
            count_received(self.app, batch)

    async def _deliver_one_by_one(
        self, tp: TP, records: Sequence[ConsumerRecord], generation: int
    ) -> None:
        """Faust's own path, for records of topics that are not batch topics."""
        for record in records:
            if not self.flow_active or not self._same_generation(generation):
                return
            message = self._to_message(tp, record)
            await self.wait_first(self.callback(message), self.suspend_flow.wait())
            self._read_offset[tp] = record.offset

    def _same_generation(self, generation: int) -> bool:
        return bool(self.app.consumer_generation_id == generation)

    # -- committing -----------------------------------------------------------------------

    def _filter_tps_with_pending_acks(self, topics: Any = None) -> Iterator[TP]:
        acked = list(super()._filter_tps_with_pending_acks(topics))
        processed = [
            tp
            for tp in self._processed.pending()
            if tp not in acked and (topics is None or tp in topics or tp.topic in topics)
        ]
        return iter(acked + processed)

    def _new_offset(self, tp: TP) -> int | None:
        if tp.topic in self.batch_topics:
            return self._processed.take(tp)
        return cast(int | None, super()._new_offset(tp))

    async def _commit_offsets(
        self, offsets: Mapping[TP, int], start_new_transaction: bool = True
    ) -> bool:
        try:
            await self.before_commit()
        except Exception as exc:
            # The state behind these offsets may not be in the changelog: never commit
            # them. The worker stops; its successor reprocesses from the last commit.
            self.log.exception("changelog not delivered, offsets not committed: %r", exc)
            await self.crash(exc)
            return False
        return cast(bool, await super()._commit_offsets(offsets, start_new_transaction))

    # -- rebalancing ----------------------------------------------------------------------

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        self._processed.forget(revoked)
        await super().on_partitions_revoked(revoked)

    async def wait_empty(self) -> None:
        """Faust waits here for events in progress before a rebalance (and at shutdown);
        a batch in progress is one of them."""
        await self.wait_for_batch_in_flight()
        await super().wait_empty()

    async def wait_for_batch_in_flight(self) -> None:
        in_flight = self._in_flight
        if in_flight is not None and not in_flight.done():
            await asyncio.wait([in_flight])


class BatchingTransport(faust_aiokafka.Transport):
    Consumer = BatchingConsumer

    def __init__(self, *args: Any, route: BatchRoute, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.route = route


def use_batching_consumer(app: faust.App, route: BatchRoute) -> None:
    """Make ``app`` consume with a ``BatchingConsumer``: call before anything uses
    ``app.consumer`` or ``app.topics`` (right after creating the app)."""
    app.transport = BatchingTransport(app.conf.broker_consumer, app, route=route)


def count_received(app: AppT, fetched: Fetched) -> None:
    """What Faust's sensors count per record (``on_message_in``, ``on_stream_event_in``),
    once per partition of a handled batch: the ``faust_*`` series keep their meaning."""
    monitor: Any = app.monitor
    metrics = getattr(monitor, "_metrics", None)
    now = monotonic()
    for tp, records in fetched:
        n, last = len(records), records[-1].offset
        monitor.messages_received_total += n
        monitor.messages_received_by_topic[tp.topic] += n
        monitor.events_total += n
        monitor.tp_read_offsets[tp] = last
        monitor.stream_inbound_time[tp] = now
        if metrics is not None:
            metrics.messages_received.inc(n)
            metrics.total_events.inc(n)
            metrics.messages_received_per_topics.labels(topic=tp.topic).inc(n)
            metrics.messages_received_per_topics_partition.labels(
                topic=tp.topic, partition=tp.partition
            ).set(last)


def count_sent(app: AppT, topic: str, count: int) -> None:
    """Faust's send sensors (``on_send_initiated``/``on_send_completed``), once per batch."""
    monitor: Any = app.monitor
    metrics = getattr(monitor, "_metrics", None)
    monitor.messages_sent += count
    monitor.messages_sent_by_topic[topic] += count
    if metrics is not None:
        metrics.topic_messages_sent.labels(topic=f"topic.{topic}").inc(count)
        metrics.total_sent_messages.inc(count)
