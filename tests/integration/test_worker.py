"""The live worker on a real broker and a real Redis, checked against the offline engine."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import fields

import pytest

from stream.engine import Figures
from tests.integration.traffic import (
    contact_records,
    offline_figures,
    produce,
    read_topic,
    safe_now_ms,
)
from tests.integration.workers import Stack, WorkerProcess

pytestmark = pytest.mark.integration
FIGURES = tuple(field.name for field in fields(Figures))


@pytest.fixture
def stack(broker, redis_server, tmp_path) -> Iterator[Stack]:
    stack = Stack(broker.url, redis_server.url, tmp_path)
    yield stack


@pytest.fixture
def workers(stack) -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.kill()


def cluster_figures(workers: list[WorkerProcess]) -> dict[tuple[str, str, str], Figures]:
    """The additive gauges summed over workers, per (window, channel, reason)."""
    totals: dict[tuple[str, str, str], list[float]] = {}
    for worker in workers:
        for (name, labels), value in worker.metrics().items():
            figure = name.removeprefix("rcr_")
            if figure in FIGURES and name.startswith("rcr_"):
                label = dict(labels)
                key = (label["window"], label["channel"], label["reason"])
                totals.setdefault(key, [0] * len(FIGURES))[FIGURES.index(figure)] += value
    return {key: Figures(*map(int, values)) for key, values in totals.items() if any(values)}


def expected_figures(records, now_ms) -> dict[tuple[str, str, str], Figures]:
    return {
        (window, channel, reason): figures
        for window, by_label in offline_figures(records, now_ms).items()
        for (channel, reason), figures in by_label.items()
        if figures != Figures()
    }


def eventually(check: Callable[[], bool], timeout: float = 60.0, explain=None) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in time: {explain() if explain else ''}")
        time.sleep(0.5)


def difference(actual: dict, expected: dict) -> dict:
    keys = set(actual) | set(expected)
    return {k: (actual.get(k), expected.get(k)) for k in keys if actual.get(k) != expected.get(k)}


def events_total(workers: list[WorkerProcess]) -> float:
    return sum(
        value
        for worker in workers
        for (name, _), value in worker.metrics().items()
        if name == "rcr_events_total"
    )


def test_live_figures_equal_the_offline_engine(stack, workers, broker, redis_client):
    workers.append(stack.start_worker())
    workers[0].wait_ready()
    now = safe_now_ms()
    records = contact_records(3000, seed=1, now_ms=now)
    malformed = [(b"k", b"{not json"), (None, b'{"contact_id": "x"}')]
    produce(broker.bootstrap, stack.topic, records + malformed)
    eventually(lambda: events_total(workers) >= len(records) + len(malformed))
    expected = expected_figures(records, now)
    eventually(lambda: cluster_figures(workers) == expected, timeout=10)

    samples = workers[0].metrics()
    rate = samples[
        (
            "rcr_repeat_contact_rate",
            (("channel", "all"), ("definition", "default"), ("reason", "all"), ("window", "24h")),
        )
    ]
    total = expected[("24h", "all", "all")]
    assert rate == pytest.approx(total.repeat_customers / total.customers)

    # Redis lookups: one per customer, counts as the engine sees them.
    keys = redis_client.keys(f"rcr-{stack.name}:customer:*")
    assert len(keys) == total.customers
    status, body = workers[0].get("/customers/cust-1")
    assert status == 200 and b"contacts_1h" in body


def test_malformed_records_are_dead_lettered_and_counted(stack, workers, broker):
    workers.append(stack.start_worker())
    workers[0].wait_ready()
    bad = [
        b"{not json",
        b'{"customer_id": "c", "timestamp": 1}',
        b"\xff\xfe",
        b'{"contact_id": "k", "customer_id": "c", "timestamp": "soon"}',
    ]
    produce(broker.bootstrap, stack.topic, [(b"c", value) for value in bad])
    eventually(lambda: events_total(workers) >= len(bad))
    rejected = {
        dict(labels)["reason"]: value
        for (name, labels), value in workers[0].metrics().items()
        if name == "rcr_events_total" and dict(labels)["outcome"] == "rejected" and value
    }
    assert rejected == {"invalid_json": 2, "missing_field": 1, "bad_timestamp": 1}
    letters = [
        (r.value, dict(r.headers)) for r in read_topic(broker.bootstrap, stack.dlq_topic, len(bad))
    ]
    assert sorted(value for value, _ in letters) == sorted(bad)  # bytes unchanged
    reasons = sorted(headers["rcr-reject-reason"].decode() for _, headers in letters)
    assert reasons == ["bad_timestamp", "invalid_json", "invalid_json", "missing_field"]
    assert workers[0].get("/readyz")[0] == 200  # unharmed


def test_workers_killed_at_random_moments_change_no_figure(stack, workers, broker):
    """SIGKILL a random worker at a random moment while contacts stream in, replace it,
    repeat (``RCR_KILL_ROUNDS``, more under ``make soak``): figures equal the offline
    engine's, whatever was lost in flight and replayed."""
    rounds = int(os.environ.get("RCR_KILL_ROUNDS", "2"))
    seed = int(os.environ.get("RCR_KILL_SEED", random.randrange(1 << 30)))
    print(f"RCR_KILL_SEED={seed}")  # shown on failure: the same records and victims again
    rnd = random.Random(seed)
    workers.extend([stack.start_worker(), stack.start_worker()])
    for worker in workers:
        worker.wait_ready()
    alive = list(workers)
    now = safe_now_ms()
    records = contact_records(1500 * (rounds + 1), seed=rnd.randrange(1 << 30), now_ms=now)
    chunks = [records[i :: rounds + 1] for i in range(rounds + 1)]
    for chunk in chunks[:-1]:
        streaming = threading.Thread(
            target=produce_slowly, args=(broker.bootstrap, stack.topic, chunk)
        )
        streaming.start()
        time.sleep(rnd.uniform(0.2, 2.0))
        victim = rnd.choice(alive)
        victim.kill()
        alive.remove(victim)
        streaming.join()
        replacement = stack.start_worker()
        workers.append(replacement)
        replacement.wait_ready()
        alive.append(replacement)
    produce(broker.bootstrap, stack.topic, chunks[-1])
    expected = expected_figures(records, now)
    eventually(
        lambda: cluster_figures(alive) == expected,
        timeout=120,
        explain=lambda: difference(cluster_figures(alive), expected),
    )


def test_a_worker_paused_past_its_session_timeout_changes_no_figure(stack, workers, broker):
    """SIGSTOP a worker for longer than its session timeout while contacts stream in: the
    group goes on without it, and the other worker counts its partitions' contacts and
    commits their offsets. Resumed, the paused worker rejoins a later generation, and
    partitions it gets back are "kept" in Faust's view: it must read their timelines again,
    or the contacts counted meanwhile are lost behind the committed offsets."""
    workers.extend([stack.start_worker(), stack.start_worker()])
    for worker in workers:
        worker.wait_ready()
    paused, other = workers
    now = safe_now_ms()
    records = contact_records(1800, seed=11, now_ms=now)
    before, during, after = records[0::3], records[1::3], records[2::3]
    produce(broker.bootstrap, stack.topic, before)
    eventually(lambda: events_total(workers) >= len(before))
    counted_before = events_total([other])
    paused.process.send_signal(signal.SIGSTOP)
    try:
        time.sleep(3 * float(stack.env()["RCR_BROKER_SESSION_TIMEOUT"]))
        produce(broker.bootstrap, stack.topic, during)
        eventually(lambda: events_total([other]) >= counted_before + len(during))
    finally:
        paused.process.send_signal(signal.SIGCONT)
    produce(broker.bootstrap, stack.topic, after)
    expected = expected_figures(records, now)
    eventually(
        lambda: cluster_figures(workers) == expected,
        timeout=120,
        explain=lambda: difference(cluster_figures(workers), expected),
    )


def produce_slowly(bootstrap: str, topic: str, records: list, slices: int = 10) -> None:
    """Stream records over a couple of seconds, so a kill lands mid-stream."""
    size = max(1, len(records) // slices)
    for start in range(0, len(records), size):
        produce(bootstrap, topic, records[start : start + size])
        time.sleep(0.2)


def test_contacts_from_a_producer_that_is_not_aiokafka(stack, workers, broker):
    """confluent-kafka (librdkafka) with its own default partitioner feeds the worker."""
    from confluent_kafka import Producer

    workers.append(stack.start_worker())
    workers[0].wait_ready()
    now = safe_now_ms()
    records = contact_records(1500, seed=3, now_ms=now)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5})
    for key, value in records:
        producer.produce(stack.topic, value=value, key=key)
        producer.poll(0)
    assert producer.flush(30) == 0
    expected = expected_figures(records, now)
    eventually(
        lambda: cluster_figures(workers) == expected,
        explain=lambda: difference(cluster_figures(workers), expected),
    )


def test_sigterm_commits_and_exits_cleanly(stack, workers, broker):
    workers.append(stack.start_worker())
    workers[0].wait_ready()
    records = contact_records(500, seed=4, now_ms=safe_now_ms())
    produce(broker.bootstrap, stack.topic, records)
    eventually(lambda: events_total(workers) >= len(records))
    started = time.monotonic()
    assert workers[0].stop(timeout=30) == 0
    assert time.monotonic() - started < 30
    # A restart reprocesses nothing: the offsets were committed on the way out.
    workers.append(stack.start_worker())
    workers[1].wait_ready()
    time.sleep(3)
    assert events_total(workers[1:]) == 0
