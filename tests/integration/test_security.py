"""Kafka TLS and SASL, Redis TLS and password: let in with the right settings, refused with
a reason that names the setting otherwise, and never a secret in the log.

What the embedded broker cannot do is documented in docs/RELIABILITY.md: it serves no TLS and
lets no SASL user in. So its own SASL authentication is tested for refusal, and TLS and a
successful SASL login go through fronts in ``secured`` (a TLS terminator, a SASL PLAIN/SCRAM
authenticator) placed before it: the worker's clients make the real handshakes and exchanges.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from stream.app.kafka_options import security_options
from stream.embedded import EmbeddedBroker, free_port
from stream.producing import KeyedProducer, ensure_topic
from stream.settings import Settings, load_settings
from tests.integration.secured import (
    AuthenticatingBroker,
    BrokerBehind,
    Certs,
    SaslFront,
    TlsFront,
    TlsRedis,
    make_certs,
)
from tests.integration.test_lookups import lookups
from tests.integration.test_worker import (
    cluster_figures,
    events_total,
    eventually,
    expected_figures,
)
from tests.integration.traffic import contact_records, produce, safe_now_ms
from tests.integration.workers import Stack, WorkerProcess

pytestmark = pytest.mark.integration
REFUSAL_TIMEOUT_S = 30.0
SASL_PASSWORD = "sasl-s3cret-pw"
REDIS_PASSWORD = "redis-s3cret-pw"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def tls_front(certs: Certs, start_service) -> Iterator[TlsFront]:
    """The embedded broker reachable only through TLS with a client certificate."""
    broker_port = free_port()
    front = TlsFront(certs, broker_port).start()
    behind = BrokerBehind(broker_port, advertised_port=front.port)
    try:
        start_service(behind.start)
        yield front
    finally:
        behind.stop()
        front.stop()


def kafka_tls_env(certs: Certs, ca: Path | None = None) -> dict[str, str]:
    return {
        "RCR_KAFKA_SECURITY_PROTOCOL": "SSL",
        "RCR_KAFKA_SSL_CAFILE": str(ca or certs.ca),
        "RCR_KAFKA_SSL_CERTFILE": str(certs.client_cert),
        "RCR_KAFKA_SSL_KEYFILE": str(certs.client_key),
    }


def settings_for(stack: Stack, env: dict[str, str]) -> Settings:
    """The settings a process started with ``stack.env(**env)`` reads."""
    fields = {key.removeprefix("RCR_").lower(): value for key, value in stack.env(**env).items()}
    return load_settings(**{k: v for k, v in fields.items() if k in Settings.model_fields})


def produce_secured(settings: Settings, records: list[tuple[bytes | None, bytes]]) -> None:
    """What ``rcr simulate`` and ``rcr replay`` do: create the topic, then send keyed."""

    async def send() -> None:
        security = security_options(settings)
        await ensure_topic(
            settings.bootstrap_servers, settings.topic, settings.topic_partitions, security
        )
        async with KeyedProducer(
            settings.bootstrap_servers, settings.topic, security=security
        ) as producer:
            for key, value in records:
                assert key is not None
                await producer.send(key.decode(), value)

    asyncio.run(send())


def refusal(worker: WorkerProcess, *expected: str) -> str:
    """The reason /readyz gives while the broker refuses the worker, once it says every one
    of ``expected``; the worker must stay alive. The worker retries and /readyz shows the
    latest attempt's reason: a first attempt that timed out on a loaded machine ("no answer
    in time") is followed by the one naming the setting, which is what must come."""
    reasons: list[str] = []
    seen: set[str] = set()

    def refused() -> bool:
        try:
            status, body = worker.get("/readyz")
        except OSError:
            return False
        reasons[:] = json.loads(body)["reasons"] if status == 503 else []
        seen.update(reasons)
        return bool(reasons) and all(word in " ".join(reasons) for word in expected)

    eventually(
        refused,
        timeout=REFUSAL_TIMEOUT_S,
        explain=lambda: f"reasons seen: {sorted(seen)}\n{worker.tail()}",
    )
    time.sleep(2)  # a retry later: still waiting, not crashed, nothing consumed
    assert worker.process.poll() is None, worker.tail()
    assert worker.get("/readyz")[0] == 503
    assert worker.get("/metrics")[0] == 404  # Faust not started: no consumer, no counters
    return " ".join(reasons)


def test_a_worker_over_mutual_tls_counts_every_contact(tls_front, certs, redis_server, tmp_path):
    env = kafka_tls_env(certs)
    stack = Stack(tls_front.url, redis_server.url, tmp_path)
    worker = stack.start_worker(**env)
    try:
        worker.wait_ready()
        now = safe_now_ms()
        records = [r for r in contact_records(600, seed=21, now_ms=now) if r[0] is not None]
        produce_secured(settings_for(stack, env), records)
        eventually(lambda: events_total([worker]) >= len(records))
        expected = expected_figures(records, now)
        eventually(lambda: cluster_figures([worker]) == expected, timeout=10)

        # A restart loads the table from its changelog (the bulk loader, over TLS too).
        assert worker.stop() == 0
        worker = stack.start_worker(**env)
        worker.wait_ready()
        eventually(lambda: cluster_figures([worker]) == expected, timeout=30)

        rebuild = subprocess.run(
            [sys.executable, "-m", "stream", "rebuild-redis"],
            env=stack.env(**env),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert rebuild.returncode == 0, rebuild.stderr
        assert "rebuilt" in rebuild.stdout
    finally:
        worker.kill()
    # Every connection any client made (Faust's consumers and producer, the probes, the
    # followers, the changelog loader, the admin and producer of simulate/replay,
    # rebuild-redis) completed the TLS handshake with the client certificate.
    assert tls_front.handshakes > 0
    assert tls_front.handshake_failures == 0


@pytest.mark.parametrize(
    ("case", "setting"),
    [
        ("untrusted broker certificate", "RCR_KAFKA_SSL_CAFILE"),
        ("no TLS", "RCR_KAFKA_SECURITY_PROTOCOL=PLAINTEXT"),
        ("no client certificate", "RCR_KAFKA_SSL_CERTFILE"),
    ],
)
def test_a_tls_mistake_keeps_the_worker_unready_with_the_reason(
    case, setting, tls_front, certs, redis_server, tmp_path
):
    env = {
        "untrusted broker certificate": kafka_tls_env(certs, ca=certs.other_ca),
        "no TLS": {},
        "no client certificate": {
            "RCR_KAFKA_SECURITY_PROTOCOL": "SSL",
            "RCR_KAFKA_SSL_CAFILE": str(certs.ca),
        },
    }[case]
    stack = Stack(tls_front.url, redis_server.url, tmp_path)
    worker = stack.start_worker(**env)
    try:
        refusal(worker, setting)
    finally:
        worker.kill()


@contextlib.contextmanager
def sasl_in_front(certs: Certs, with_tls: bool, start_service) -> Iterator[tuple[str, SaslFront]]:
    """The embedded broker behind a SASL front (SASL_PLAINTEXT), or behind TLS and then the
    SASL front (SASL_SSL); it advertises the outermost address. Yields the broker URL."""
    broker_port = free_port()
    sasl = SaslFront({"rcr-worker": SASL_PASSWORD}, broker_port).start()
    tls = TlsFront(certs, sasl.port).start() if with_tls else None
    outermost = tls or sasl
    behind = BrokerBehind(broker_port, advertised_port=outermost.port)
    try:
        start_service(behind.start)
        yield outermost.url, sasl
    finally:
        behind.stop()
        for front in (tls, sasl):
            if front is not None:
                front.stop()


def sasl_env(mechanism: str, with_tls: bool, certs: Certs, password: str) -> dict[str, str]:
    env = kafka_tls_env(certs) if with_tls else {}
    env.update(
        {
            "RCR_KAFKA_SECURITY_PROTOCOL": "SASL_SSL" if with_tls else "SASL_PLAINTEXT",
            "RCR_KAFKA_SASL_MECHANISM": mechanism,
            "RCR_KAFKA_SASL_USERNAME": "rcr-worker",
            "RCR_KAFKA_SASL_PASSWORD": password,
        }
    )
    return env


@pytest.mark.parametrize(
    ("mechanism", "with_tls"),
    [("PLAIN", False), ("SCRAM-SHA-256", False), ("SCRAM-SHA-512", True)],
)
def test_a_worker_logged_in_with_sasl_counts_every_contact(
    mechanism, with_tls, certs, redis_server, start_service, tmp_path
):
    env = sasl_env(mechanism, with_tls, certs, SASL_PASSWORD)
    with sasl_in_front(certs, with_tls, start_service) as (url, sasl):
        stack = Stack(url, redis_server.url, tmp_path)
        worker = stack.start_worker(**env)
        try:
            worker.wait_ready()
            now = safe_now_ms()
            records = [r for r in contact_records(300, seed=27, now_ms=now) if r[0] is not None]
            produce_secured(settings_for(stack, env), records)
            eventually(lambda: events_total([worker]) >= len(records))
            expected = expected_figures(records, now)
            eventually(lambda: cluster_figures([worker]) == expected, timeout=10)
        finally:
            worker.kill()
        # Every connection logged in first: none tried a request without SASL, none failed.
        assert sasl.authenticated > 0
        assert (sasl.refused, sasl.unauthenticated_requests) == (0, 0)
    assert SASL_PASSWORD not in worker.log.read_text(errors="replace")


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_a_wrong_sasl_password_keeps_the_worker_unready_with_the_reason(
    mechanism, certs, redis_server, start_service, tmp_path
):
    wrong = "not-the-sasl-password"
    with sasl_in_front(certs, False, start_service) as (url, sasl):
        stack = Stack(url, redis_server.url, tmp_path)
        worker = stack.start_worker(**sasl_env(mechanism, False, certs, wrong))
        try:
            reason = refusal(worker, "RCR_KAFKA_SASL_PASSWORD", mechanism)
        finally:
            worker.kill()
        assert sasl.refused > 0 and sasl.authenticated == 0
    assert wrong not in worker.log.read_text(errors="replace") + reason


@pytest.fixture(scope="module")
def authenticating_broker(start_service) -> Iterator[EmbeddedBroker]:
    service = start_service(lambda: AuthenticatingBroker().start())
    yield service
    service.stop()


@pytest.mark.parametrize(
    ("mechanism", "setting"),
    [
        ("PLAIN", "RCR_KAFKA_SASL_MECHANISM=PLAIN"),  # the broker offers no PLAIN
        ("SCRAM-SHA-256", "RCR_KAFKA_SASL_PASSWORD"),
        ("SCRAM-SHA-512", "RCR_KAFKA_SASL_PASSWORD"),
        (None, "RCR_KAFKA_SECURITY_PROTOCOL=PLAINTEXT"),
    ],
)
def test_a_broker_that_demands_sasl_keeps_an_unknown_worker_out(
    mechanism, setting, authenticating_broker, redis_server, tmp_path
):
    env = {}
    if mechanism:
        env = {
            "RCR_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "RCR_KAFKA_SASL_MECHANISM": mechanism,
            "RCR_KAFKA_SASL_USERNAME": "rcr-worker",
            "RCR_KAFKA_SASL_PASSWORD": SASL_PASSWORD,
        }
    stack = Stack(authenticating_broker.url, redis_server.url, tmp_path)
    worker = stack.start_worker(**env)
    try:
        refusal(worker, setting)
    finally:
        worker.kill()
    assert SASL_PASSWORD not in worker.log.read_text(errors="replace")


def test_a_worker_started_before_the_broker_waits_for_it(redis_server, start_service, tmp_path):
    late = EmbeddedBroker()
    stack = Stack(late.url, redis_server.url, tmp_path)
    worker = stack.start_worker()
    try:
        refusal(worker, "cannot connect")
        start_service(late.start)
        worker.wait_ready()
    finally:
        worker.kill()
        late.stop()


@pytest.fixture
def tls_redis(certs, start_service) -> Iterator[TlsRedis]:
    service = start_service(lambda: TlsRedis(certs, password=REDIS_PASSWORD).start())
    yield service
    service.stop()


def redis_tls_env(certs: Certs) -> dict[str, str]:
    return {
        "RCR_REDIS_SSL_CAFILE": str(certs.ca),
        "RCR_REDIS_SSL_CERTFILE": str(certs.client_cert),
        "RCR_REDIS_SSL_KEYFILE": str(certs.client_key),
    }


def test_lookups_reach_a_redis_that_wants_tls_a_client_certificate_and_a_password(
    broker, tls_redis, certs, tmp_path
):
    env = redis_tls_env(certs)
    stack = Stack(broker.url, tls_redis.url, tmp_path)  # rediss://:password@host:port/0
    worker = stack.start_worker(**env)
    try:
        worker.wait_ready()
        produce(broker.bootstrap, stack.topic, contact_records(200, seed=23, now_ms=safe_now_ms()))
        client = tls_redis.client()
        eventually(lambda: "cust-1" in lookups(client, stack), explain=worker.tail)
        assert json.loads(worker.get("/readyz")[1])["redis"] == "up"
        lookup = subprocess.run(
            [sys.executable, "-m", "stream", "lookup", "cust-1"],
            env=stack.env(**env),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert lookup.returncode == 0, lookup.stderr
        assert json.loads(lookup.stdout)["customer_id"] == "cust-1"
    finally:
        worker.kill()
    assert REDIS_PASSWORD not in worker.log.read_text(errors="replace")


def test_redis_refuses_clients_without_tls_certificate_or_password(tls_redis, certs):
    host, port = tls_redis.host, tls_redis.port
    without_tls = redis.Redis(host=host, port=port, password=REDIS_PASSWORD, socket_timeout=2)
    with pytest.raises(redis.ConnectionError):
        without_tls.ping()
    without_certificate = redis.Redis.from_url(
        tls_redis.url, ssl_ca_certs=str(certs.ca), socket_timeout=2
    )
    with pytest.raises(redis.ConnectionError):
        without_certificate.ping()
    wrong_password = tls_redis.url.replace(REDIS_PASSWORD, "not-the-password")
    with pytest.raises(redis.AuthenticationError):
        redis.Redis.from_url(wrong_password, **_client_tls(certs)).ping()
    assert tls_redis.client().ping()


def _client_tls(certs: Certs) -> dict[str, str]:
    return {
        "ssl_ca_certs": str(certs.ca),
        "ssl_certfile": str(certs.client_cert),
        "ssl_keyfile": str(certs.client_key),
    }


def test_a_wrong_redis_password_is_counted_not_fatal_and_never_logged(
    broker, tls_redis, certs, tmp_path
):
    url = tls_redis.url.replace(REDIS_PASSWORD, "not-the-password")
    stack = Stack(broker.url, url, tmp_path)
    worker = stack.start_worker(**redis_tls_env(certs))
    try:
        worker.wait_ready()  # figures do not depend on Redis
        records = contact_records(50, seed=29, now_ms=safe_now_ms())
        produce(broker.bootstrap, stack.topic, records)
        eventually(lambda: events_total([worker]) >= len(records))
        errors = lambda: sum(  # noqa: E731
            v for (n, _), v in worker.metrics().items() if n == "rcr_redis_write_errors_total"
        )
        eventually(lambda: errors() > 0, explain=worker.tail)
        assert json.loads(worker.get("/readyz")[1])["redis"] == "down"
    finally:
        worker.kill()
    log = worker.log.read_text(errors="replace")
    assert "not-the-password" not in log
    assert "invalid username-password pair" in log  # Redis' own reason, in the log
