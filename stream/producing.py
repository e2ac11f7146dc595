"""One way to write contact events to Kafka, shared by `rcr simulate` and `rcr replay`.

Every record is keyed by ``customer_id`` (contract section 1: all of one customer's contacts
must land in one partition, and the worker's default partitioner is the same murmur2 as
aiokafka's). Sends are batched (``linger_ms``) and the number of unacknowledged records is
bounded, so a fast generator cannot buffer the whole run in memory and a broker failure
surfaces within one window of records instead of at the very end. aiokafka keeps one batch
in flight per partition, so records of one key arrive in the order they were sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

log = logging.getLogger(__name__)


class ProduceError(RuntimeError):
    """The broker refused or lost a record; the run must not report success."""


class KeyedProducer:
    """An aiokafka producer for one topic: keyed, batched, bounded in flight, flushed at end.

    ``security`` is :func:`stream.app.kafka_options.security_options` (TLS, SASL).
    Use as ``async with KeyedProducer(...) as producer: await producer.send(key, event)``;
    leaving the block without an exception flushes and raises :class:`ProduceError` if any
    record failed.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        *,
        linger_ms: int = 20,
        max_batch_bytes: int = 256 * 1024,
        max_in_flight: int = 10_000,
        acks: int | str = "all",
        client_id: str = "rcr-producer",
        security: Mapping[str, Any] | None = None,
    ) -> None:
        self.topic = topic
        self.max_in_flight = max_in_flight
        self.sent = 0
        self.bytes = 0
        self._pending: set[asyncio.Future[Any]] = set()
        self._error: BaseException | None = None
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers,
            client_id=client_id,
            linger_ms=linger_ms,
            max_batch_size=max_batch_bytes,
            acks=acks,
            **(security or {}),
        )

    async def __aenter__(self) -> KeyedProducer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                await self.flush()
        finally:
            await self.stop()

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def send(self, key: str, value: bytes | Mapping[str, Any]) -> None:
        """Queue one record; waits only when ``max_in_flight`` records are unacknowledged."""
        self._raise_if_failed()
        payload = value if isinstance(value, bytes) else orjson.dumps(value)
        while len(self._pending) >= self.max_in_flight:
            await asyncio.wait(self._pending, return_when=asyncio.FIRST_COMPLETED)
            self._raise_if_failed()
        delivery = await self._producer.send(self.topic, payload, key=key.encode())
        self._pending.add(delivery)
        delivery.add_done_callback(self._delivered)
        self.bytes += len(payload)

    def _delivered(self, delivery: asyncio.Future[Any]) -> None:
        self._pending.discard(delivery)
        if delivery.cancelled():
            self._error = self._error or ProduceError("send cancelled")
        elif delivery.exception() is not None:
            self._error = self._error or delivery.exception()
        else:
            self.sent += 1

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise ProduceError(f"producing to {self.topic!r} failed: {self._error}") from (
                self._error
            )

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    async def flush(self) -> None:
        """Wait until every queued record is acknowledged (or one fails)."""
        await self._producer.flush()
        if self._pending:
            await asyncio.wait(set(self._pending))
        self._raise_if_failed()


async def ensure_topic(
    bootstrap_servers: str,
    topic: str,
    partitions: int,
    security: Mapping[str, Any] | None = None,
) -> bool:
    """Create ``topic`` with ``partitions`` when it does not exist yet; True if created.

    Without this, the first producer would have the broker auto-create the topic with its
    default partition count, and the worker's ``RCR_TOPIC_PARTITIONS`` would never apply.
    Best effort: a broker that refuses topic creation (ACLs, no admin API) is logged and
    left to auto-creation or to whoever manages topics.
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, client_id="rcr-admin", **(security or {})
    )
    try:
        await admin.start()
        if topic in set(await admin.list_topics()):
            return False
        brokers = (await admin.describe_cluster()).get("brokers", [])
        replication = max(1, min(3, len(brokers)))
        response = await admin.create_topics([NewTopic(topic, partitions, replication)])
        for _name, code, message in response.topic_errors:
            if code == TopicAlreadyExistsError.errno:
                return False
            if code:
                log.warning("could not create topic %r: error %s %s", topic, code, message)
                return False
        return True
    except TopicAlreadyExistsError:
        return False
    except (TimeoutError, KafkaError, OSError) as exc:
        log.warning("could not check or create topic %r: %s", topic, exc)
        return False
    finally:
        await admin.close()
