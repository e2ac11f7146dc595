"""The embedded services behave like the real ones for what the worker and the tests need."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from redis.backoff import NoBackoff
from redis.retry import Retry

from stream.embedded import (
    EmbeddedBroker,
    EmbeddedRedis,
    EmbeddedServiceError,
    free_port,
    is_listening,
    kafka_metadata_brokers,
)

StartService = Callable[[Callable[[], Any]], Any]

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

# Short group timings: Tansu's JoinGroup waits about half the session timeout.
FAST_GROUP = {"session_timeout_ms": 3000, "heartbeat_interval_ms": 500}


def unique(prefix: str) -> str:
    """A topic or group name no other test uses (the broker is shared by the session)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def create_topic(bootstrap: str, name: str, partitions: int = 4) -> None:
    """Create a topic explicitly, as the worker will, rather than rely on auto-creation."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, replication_factor=1)])
    finally:
        await admin.close()


async def read_all(consumer: AIOKafkaConsumer, expected: int, timeout: float) -> list[bytes]:
    """Consume until ``expected`` values arrived; fail (not hang) after ``timeout`` seconds."""
    values: list[bytes] = []

    async def drain() -> None:
        while len(values) < expected:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                values.extend(record.value for record in records)

    await asyncio.wait_for(drain(), timeout)
    return values


def test_aiokafka_round_trip_through_a_consumer_group(broker: EmbeddedBroker) -> None:
    topic, group = unique("roundtrip"), unique("group")
    sent = [f"event-{i}".encode() for i in range(1000)]

    async def scenario() -> list[bytes]:
        await create_topic(broker.bootstrap, topic)
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5)
        await producer.start()
        try:
            for i, value in enumerate(sent):
                await producer.send(topic, value, key=f"customer-{i % 37}".encode())
            await producer.flush()
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=broker.bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            **FAST_GROUP,
        )
        await consumer.start()
        try:
            values = await read_all(consumer, len(sent), timeout=20)
            assert len(consumer.assignment()) == 4
            await consumer.commit()
        finally:
            await consumer.stop()
        return values

    received = asyncio.run(scenario())
    assert sorted(received) == sorted(sent)


def test_confluent_kafka_producer_interoperates_with_aiokafka(broker: EmbeddedBroker) -> None:
    confluent_kafka = pytest.importorskip("confluent_kafka")
    topic = unique("interop")
    asyncio.run(create_topic(broker.bootstrap, topic, partitions=2))
    producer = confluent_kafka.Producer(
        {"bootstrap.servers": broker.bootstrap, "enable.idempotence": False}
    )
    for i in range(200):
        producer.produce(topic, key=f"k{i}".encode(), value=f"v{i}".encode())
    assert producer.flush(10) == 0, "confluent-kafka did not deliver every record"

    async def consume() -> list[bytes]:
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap)
        await consumer.start()
        try:
            consumer.assign([TopicPartition(topic, p) for p in range(2)])
            await consumer.seek_to_beginning()
            return await read_all(consumer, 200, timeout=10)
        finally:
            await consumer.stop()

    received = asyncio.run(consume())
    assert sorted(received) == sorted(f"v{i}".encode() for i in range(200))


def test_broker_metadata_advertises_its_own_address(broker: EmbeddedBroker) -> None:
    assert broker.url == f"kafka://127.0.0.1:{broker.port}"
    assert broker.bootstrap == f"127.0.0.1:{broker.port}"
    assert kafka_metadata_brokers(broker.host, broker.port) == [(broker.host, broker.port)]


def test_paused_broker_stalls_clients_and_resume_lets_them_finish(
    start_service: StartService,
) -> None:
    # A private broker: pausing the session one would stall the other tests.
    with start_service(lambda: EmbeddedBroker().start()) as paused_broker:
        topic = unique("outage")

        async def scenario() -> None:
            await create_topic(paused_broker.bootstrap, topic, partitions=1)
            producer = AIOKafkaProducer(bootstrap_servers=paused_broker.bootstrap)
            await producer.start()
            try:
                await producer.send_and_wait(topic, b"before")
                paused_broker.pause()
                pending = asyncio.ensure_future(producer.send_and_wait(topic, b"during"))
                done, _ = await asyncio.wait({pending}, timeout=1.0)
                assert not done, "a paused broker must not answer"
                paused_broker.resume()
                await asyncio.wait_for(pending, 10)
            finally:
                paused_broker.resume()
                await producer.stop()

        asyncio.run(scenario())
        assert paused_broker.running
    assert not paused_broker.running


def test_paused_broker_does_not_answer_metadata(broker: EmbeddedBroker) -> None:
    broker.pause()
    try:
        assert is_listening(broker.host, broker.port), "the kernel still accepts connections"
        with pytest.raises(socket.timeout):
            kafka_metadata_brokers(broker.host, broker.port, timeout=0.3)
    finally:
        broker.resume()
    assert kafka_metadata_brokers(broker.host, broker.port) == [(broker.host, broker.port)]


def test_start_on_a_busy_port_fails_with_a_clear_message(broker: EmbeddedBroker) -> None:
    with pytest.raises(EmbeddedServiceError, match="already in use"):
        EmbeddedBroker(port=broker.port).start()


def test_stop_is_idempotent_and_frees_the_port(start_service: StartService) -> None:
    service = start_service(lambda: EmbeddedBroker().start())
    port = service.port
    service.stop()
    service.stop()
    assert not service.running
    assert not is_listening("127.0.0.1", port)


def test_redis_ping_set_get(redis_client: redis.Redis) -> None:
    assert redis_client.ping()
    redis_client.set("rcr:test", "value")
    assert redis_client.get("rcr:test") == "value"
    assert redis_client.dbsize() == 1


def test_redis_client_starts_on_an_empty_database(redis_client: redis.Redis) -> None:
    assert redis_client.dbsize() == 0


def test_redis_pause_and_resume(redis_server: EmbeddedRedis) -> None:
    client = redis.Redis.from_url(redis_server.url, socket_timeout=0.3)
    assert client.ping()
    redis_server.pause()
    try:
        with pytest.raises(redis.TimeoutError):
            client.ping()
    finally:
        redis_server.resume()
    assert redis.Redis.from_url(redis_server.url, socket_timeout=2).ping()
    client.close()


def test_redis_with_password_rejects_anonymous_clients(start_service: StartService) -> None:
    password = "s3cret:/@ pass"
    with start_service(lambda: EmbeddedRedis(password=password).start()) as secured:
        cmdline = Path(f"/proc/{secured.pid}/cmdline").read_text()
        assert "s3cret" not in cmdline, "the password must not show in the process list"
        assert redis.Redis.from_url(secured.url).ping()
        # No retries: redis-py 8 otherwise backs off for seconds on an authentication error.
        anonymous = redis.Redis(host=secured.host, port=secured.port, retry=Retry(NoBackoff(), 0))
        with pytest.raises(redis.AuthenticationError):
            anonymous.ping()


def test_free_port_is_free() -> None:
    port = free_port()
    assert 0 < port < 65536
    assert not is_listening("127.0.0.1", port)
