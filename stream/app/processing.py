"""A batch of raw records through validation and the partition engines.

No Faust and no I/O here: the agent hands records in and gets back what to dead-letter,
what to repartition and what to count, so the whole per-record path is unit-testable.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from stream.app.partitions import PartitionEngines
from stream.engine import ContactEvent, Engine, Outcome, Rejection, decode_contact
from stream.engine.exclusions import ExclusionPolicy, exclusion_of


class Record(Protocol):
    """A consumed Kafka record, as much of it as the engine needs: aiokafka's
    ``ConsumerRecord`` as fetched (copying a batch into other objects cost the worker 3%)."""

    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


class Consumed(NamedTuple):
    """A ``Record`` made by hand (tests, tools)."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class DeadLetter(NamedTuple):
    record: Record
    reason: str
    detail: str


@dataclass
class BatchResult:
    dead_letters: list[DeadLetter] = field(default_factory=list)
    # Valid contacts on another partition than their customer's: they must be re-keyed first.
    misrouted: list[tuple[str, Record]] = field(default_factory=list)
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    # Records of partitions revoked while their batch was buffered: not ours to count. Their
    # offsets are not committed by us, so the partition's new owner processes them.
    not_ours: int = 0
    lags_s: list[float] = field(default_factory=list)


class ContactProcessor:
    """Validates, routes and ingests records.

    ``partition_of`` names the partition every contact of a customer must be counted on.
    A record elsewhere (keyed by something else, or by a producer with another partitioner)
    is misrouted: counting it where it landed could split one customer over two engines.
    Valid contacts the figures leave out (``exclusion_of``) are only counted, never routed.
    """

    def __init__(
        self,
        engines: PartitionEngines,
        max_record_bytes: int,
        partition_of: Callable[[str], int],
        exclusions: ExclusionPolicy,
    ) -> None:
        self.engines = engines
        self.max_record_bytes = max_record_bytes
        self.partition_of = partition_of
        self.exclusions = exclusions

    def process(self, records: Iterable[Record], wall_ms: int) -> BatchResult:
        result = BatchResult()
        self.engines.advance(wall_ms)
        dimensions = self.engines.config.dimensions
        for record in records:
            engine = self.engines.engine(record.partition)
            if engine is None:
                result.not_ours += 1
                continue
            # A null value (a tombstone) is no contact: it is rejected as invalid JSON.
            decoded = decode_contact(record.value or b"", self.max_record_bytes, dimensions)
            if isinstance(decoded, Rejection):
                self._reject(result, record, decoded)
            elif (excluded := exclusion_of(decoded, self.exclusions)) is not None:
                # Before routing: an anonymous contact has no customer partition to go to.
                result.outcomes[(excluded.value, "")] += 1
            elif not self._routed_here(engine, decoded.customer_id, record.partition):
                result.misrouted.append((decoded.customer_id, record))
            else:
                self._ingest(result, engine, record, decoded, wall_ms)
        return result

    def _routed_here(self, engine: Engine, customer_id: str, partition: int) -> bool:
        # A customer this partition's engine holds was routed here before (or restored from
        # this partition's changelog): only a new customer needs the partitioner.
        return customer_id in engine.customers or self.partition_of(customer_id) == partition

    def _ingest(
        self,
        result: BatchResult,
        engine: Engine,
        record: Record,
        event: ContactEvent,
        wall_ms: int,
    ) -> None:
        outcome = engine.ingest(event)
        if isinstance(outcome, Rejection):
            self._reject(result, record, outcome)
            return
        result.outcomes[(outcome.value, "")] += 1
        if outcome is Outcome.ACCEPTED:
            result.lags_s.append(max(0.0, (wall_ms - event.timestamp_ms) / 1000))

    @staticmethod
    def _reject(result: BatchResult, record: Record, rejection: Rejection) -> None:
        reason = rejection.reason.value
        result.outcomes[(Outcome.REJECTED.value, reason)] += 1
        result.dead_letters.append(DeadLetter(record, reason, rejection.detail))
