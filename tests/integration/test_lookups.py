"""Redis lookups: served, protected, rebuilt from the table, repaired after an outage."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import orjson
import pytest
import redis
from click.testing import CliRunner

from stream.cli import main
from stream.embedded import EmbeddedRedis
from tests.integration.test_worker import events_total, eventually
from tests.integration.traffic import contact_records, produce, safe_now_ms
from tests.integration.workers import Stack, WorkerProcess

pytestmark = pytest.mark.integration
TOKEN = "s3cret-token"


@pytest.fixture
def private_redis(start_service) -> Iterator[EmbeddedRedis]:
    service = start_service(lambda: EmbeddedRedis().start())
    yield service
    service.stop()


@pytest.fixture
def running(broker, private_redis, tmp_path) -> Iterator[tuple[Stack, WorkerProcess]]:
    stack = Stack(broker.url, private_redis.url, tmp_path)
    worker = stack.start_worker(RCR_API_TOKEN=TOKEN)
    worker.wait_ready()
    yield stack, worker
    worker.kill()


def lookups(client: redis.Redis, stack: Stack) -> dict[str, dict[str, str]]:
    prefix = f"rcr-{stack.name}:customer:"
    return {
        key.removeprefix(prefix): {
            k: v for k, v in client.hgetall(key).items() if k != "updated_at"
        }
        for key in client.scan_iter(match=f"{prefix}*")
    }


def drilldown_keys(client: redis.Redis, stack: Stack) -> dict[str, list]:
    """Every top-customers set and the bursts, as (member, score) lists."""
    prefix = f"rcr-{stack.name}:"
    keys = [*client.scan_iter(match=f"{prefix}top:customers:*"), f"{prefix}bursts"]
    return {key: client.zrange(key, 0, -1, withscores=True) for key in keys}


def get(worker: WorkerProcess, path: str, token: str | None) -> tuple[int, dict]:
    request = urllib.request.Request(worker.base + path)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_lookups_are_protected_rebuilt_and_repaired(running, broker, private_redis, monkeypatch):
    stack, worker = running
    client = redis.Redis.from_url(private_redis.url, decode_responses=True)
    records = contact_records(800, seed=11, now_ms=safe_now_ms())
    produce(broker.bootstrap, stack.topic, records)
    eventually(lambda: events_total([worker]) >= len(records))
    eventually(lambda: "cust-1" in lookups(client, stack))
    before = lookups(client, stack)

    assert get(worker, "/customers/cust-1", None)[0] == 401
    assert get(worker, "/customers/cust-1", "wrong")[0] == 401
    status, body = get(worker, "/customers/cust-1", TOKEN)
    assert status == 200 and body["contacts_30d"] == before["cust-1"]["contacts_30d"]
    assert get(worker, "/customers/nobody", TOKEN)[0] == 404

    # Drill-down: top repeat customers (Redis) and reasons, and a burst from a fresh customer.
    status, top = get(worker, "/top?window=30d&limit=3", TOKEN)
    assert status == 200 and len(top["customers"]) == 3
    assert top["customers"][0]["contacts"] == int(
        before[top["customers"][0]["customer_id"]]["contacts_30d"]
    )
    assert {reason["reason"] for reason in top["reasons"]} <= {"billing", "login", "delivery"}
    assert get(worker, "/bursts", None)[0] == 401
    now = safe_now_ms()
    burst = [
        (
            b"burster",
            orjson.dumps(
                {
                    "contact_id": f"b{n}",
                    "customer_id": "burster",
                    "timestamp": now - (3 - n) * 60_000,
                }
            ),
        )
        for n in range(3)
    ]
    produce(broker.bootstrap, stack.topic, burst)
    eventually(
        lambda: any(
            b["customer_id"] == "burster" for b in get(worker, "/bursts", TOKEN)[1]["bursts"]
        )
    )
    before = lookups(client, stack)
    drilldown = drilldown_keys(client, stack)

    for name, value in stack.env().items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["lookup", "cust-1"])
    assert result.exit_code == 0 and json.loads(result.stdout)["last_contact_at"]

    client.flushdb()  # losing Redis loses nothing: the table rebuilds it
    result = CliRunner().invoke(main, ["rebuild-redis"])
    assert result.exit_code == 0, result.output
    assert lookups(client, stack) == before
    rebuilt = drilldown_keys(client, stack)
    bursts = f"rcr-{stack.name}:bursts"
    assert set(rebuilt.pop(bursts)) <= set(drilldown.pop(bursts))  # late contacts can move
    assert rebuilt == drilldown  # where a burst crosses its threshold; none is made up

    private_redis.pause()  # Redis hangs: processing goes on, errors are counted
    try:
        more = contact_records(300, seed=12, now_ms=safe_now_ms())
        produce(broker.bootstrap, stack.topic, more)
        eventually(lambda: events_total([worker]) >= len(records) + len(more))
        eventually(lambda: redis_errors(worker) > 0, timeout=30)
        assert get(worker, "/readyz", None)[0] == 200
    finally:
        private_redis.resume()
    eventually(lambda: worker_redis_up(worker), timeout=30)
    eventually(lambda: worker.metrics().get(("rcr_redis_pending_customers", ())) == 0)
    repaired = lookups(client, stack)
    client.flushdb()
    assert CliRunner().invoke(main, ["rebuild-redis"]).exit_code == 0
    assert repaired == lookups(client, stack)
    assert len(repaired) > len(before)


def redis_errors(worker: WorkerProcess) -> float:
    return worker.metrics().get(("rcr_redis_write_errors_total", ()), 0.0)


def worker_redis_up(worker: WorkerProcess) -> bool:
    return worker.metrics().get(("rcr_redis_up", ()), 0.0) == 1.0


def test_a_password_protected_redis(broker, start_service, tmp_path):
    protected = start_service(lambda: EmbeddedRedis(password="redis-secret").start())
    stack = Stack(broker.url, protected.url, tmp_path)  # redis://:redis-secret@host:port/0
    worker = stack.start_worker()
    try:
        worker.wait_ready()
        records = contact_records(100, seed=13, now_ms=safe_now_ms())
        produce(broker.bootstrap, stack.topic, records)
        client = redis.Redis.from_url(protected.url, decode_responses=True)
        eventually(lambda: "cust-1" in lookups(client, stack))
        anonymous = redis.Redis(host=protected.host, port=protected.port)
        with pytest.raises(redis.AuthenticationError):
            anonymous.get("x")
        assert "redis-secret" not in worker.log.read_text(errors="replace")
    finally:
        worker.kill()
        protected.stop()
