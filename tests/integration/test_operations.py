"""What on-call relies on: readiness through a broker outage, the customer base, rcr dev."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import orjson
import pytest

from stream.embedded import EmbeddedBroker, free_port, is_listening
from tests.integration.test_embedded import create_topic
from tests.integration.test_worker import (
    cluster_figures,
    difference,
    eventually,
    expected_figures,
)
from tests.integration.traffic import contact_records, produce, safe_now_ms
from tests.integration.workers import Stack, WorkerProcess

pytestmark = pytest.mark.integration


@pytest.fixture
def private_broker(start_service) -> Iterator[EmbeddedBroker]:
    service = start_service(lambda: EmbeddedBroker().start())
    yield service
    service.resume()
    service.stop()


def readyz(worker: WorkerProcess) -> tuple[int, dict]:
    status, body = worker.get("/readyz")
    return status, json.loads(body)


def test_broker_outage_makes_the_worker_unready_then_it_catches_up(
    private_broker, redis_server, tmp_path
):
    stack = Stack(private_broker.url, redis_server.url, tmp_path)
    worker = stack.start_worker()
    try:
        worker.wait_ready()
        now = safe_now_ms()
        records = contact_records(1000, seed=21, now_ms=now)
        produce(private_broker.bootstrap, stack.topic, records[:500])
        private_broker.pause()
        try:
            eventually(lambda: readyz(worker)[0] == 503, timeout=30)
            assert "broker unreachable" in readyz(worker)[1]["reasons"]
            time.sleep(3)
            assert worker.process.poll() is None  # it waits, it does not exit
        finally:
            private_broker.resume()
        eventually(lambda: readyz(worker)[0] == 200, timeout=60)
        produce(private_broker.bootstrap, stack.topic, records[500:])
        expected = expected_figures(records, now)
        eventually(
            lambda: cluster_figures([worker]) == expected,
            explain=lambda: difference(cluster_figures([worker]), expected),
        )
    finally:
        worker.kill()


def test_the_customer_base_topic_sets_the_contact_rate(broker, redis_server, tmp_path):
    stack = Stack(broker.url, redis_server.url, tmp_path)
    worker = stack.start_worker(RCR_CUSTOMER_BASE="100")
    try:
        worker.wait_ready()
        records = contact_records(200, seed=22, now_ms=safe_now_ms())
        produce(broker.bootstrap, stack.topic, records)
        label = (
            ("channel", "all"),
            ("definition", "default"),
            ("reason", "all"),
            ("window", "24h"),
        )

        def contact_rate() -> float:
            return worker.metrics().get(("rcr_contact_rate", label), float("nan"))

        expected = expected_figures(records, safe_now_ms())[("24h", "all", "all")].contacts
        eventually(lambda: contact_rate() == pytest.approx(expected / 100))
        base = {"segment": "all", "active_customers": 950, "timestamp": "2026-11-01T00:00:00Z"}
        produce(broker.bootstrap, f"customer-base-{stack.name}", [(b"all", orjson.dumps(base))])
        eventually(lambda: contact_rate() == pytest.approx(expected / 950))
        assert worker.metrics()[("rcr_customer_base", (("segment", "all"),))] == 950
    finally:
        worker.kill()


def test_rcr_dev_starts_everything_and_ctrl_c_stops_it(tmp_path):
    broker_port, redis_port, web_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RCR_")}
    env.update(
        {
            "RCR_BROKER": f"kafka://127.0.0.1:{broker_port}",
            "RCR_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "RCR_WEB_PORT": str(web_port),
            "RCR_STATE_DIR": str(tmp_path / "state"),
        }
    )
    log = (tmp_path / "dev.log").open("w+")
    dev = subprocess.Popen(
        [sys.executable, "-m", "stream", "dev", "--rate", "50"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while "rcr-stream is running" not in (tmp_path / "dev.log").read_text():
            assert dev.poll() is None, (tmp_path / "dev.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no banner in 90 s"
            time.sleep(0.5)
        text = (tmp_path / "dev.log").read_text()
        assert f"http://localhost:{web_port}/metrics" in text
        assert "rcr lookup c" in text  # a real customer, from simulated traffic
        os.killpg(dev.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
        assert dev.wait(60) == 0
    finally:
        if dev.poll() is None:
            os.killpg(dev.pid, signal.SIGKILL)
    for port in (broker_port, redis_port, web_port):
        assert not is_listening("127.0.0.1", port), f"port {port} still open after Ctrl-C"


def test_a_contacts_topic_with_another_partition_count_is_reported(broker, redis_server, tmp_path):
    stack = Stack(broker.url, redis_server.url, tmp_path)
    asyncio.run(create_topic(broker.bootstrap, stack.topic, partitions=2))
    worker = stack.start_worker()  # RCR_TOPIC_PARTITIONS defaults to 4
    try:

        def reasons() -> list[str]:
            try:
                return readyz(worker)[1]["reasons"]
            except OSError:
                return []

        eventually(lambda: any("RCR_TOPIC_PARTITIONS=4" in r for r in reasons()), timeout=60)
        assert readyz(worker)[0] == 503
        assert "has 2 partitions" in " ".join(reasons())
    finally:
        worker.kill()
