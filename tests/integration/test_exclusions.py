"""Abandoned and anonymous contacts at a real worker: counted under their own outcomes,
never dead-lettered, in no figure."""

from __future__ import annotations

import random

import orjson
import pytest

from stream.engine import Figures
from stream.engine.exclusions import AbandonedExclusion, ExclusionPolicy, parse_anonymous_ids
from tests.integration.test_worker import cluster_figures, events_total, eventually
from tests.integration.traffic import offline_figures, produce, read_topic, safe_now_ms
from tests.integration.workers import Stack

pytestmark = pytest.mark.integration
MINUTE_MS = 60_000
SETTINGS = {
    "RCR_EXCLUDE_ABANDONED": "short",
    "RCR_SHORT_ABANDON_THRESHOLD": "10s",
    "RCR_ANONYMOUS_CUSTOMER_IDS": "anonymous,walk-in",
}
POLICY = ExclusionPolicy(AbandonedExclusion.SHORT, 10_000, parse_anonymous_ids("anonymous,walk-in"))


def contacts_by_outcome(now_ms: int, seed: int = 11) -> dict[str, list[tuple[bytes, bytes]]]:
    """Records by the outcome they must end with under SETTINGS."""
    rnd = random.Random(seed)
    counter = iter(range(10**6))

    def record(customer: str | None, **fields: object) -> tuple[bytes, bytes]:
        document = {
            "contact_id": f"k{next(counter)}",
            "customer_id": customer,
            "timestamp": now_ms - rnd.randint(1, 600) * MINUTE_MS,
            "channel": rnd.choice(["phone", "chat"]),
            **fields,
        }
        return (customer or "none").encode(), orjson.dumps(document)

    customers = [f"cust-{n}" for n in range(40)]
    return {
        # A long abandon (or none at all) is a contact under RCR_EXCLUDE_ABANDONED=short.
        "accepted": [record(rnd.choice(customers)) for _ in range(300)]
        + [
            record(rnd.choice(customers), status="abandoned", wait_time=rnd.uniform(10, 300))
            for _ in range(50)
        ]
        + [record(rnd.choice(customers), status="abandoned") for _ in range(20)],
        "short_abandoned": [
            record(rnd.choice(customers), status="Abandoned", wait_time=rnd.uniform(0, 9.9))
            for _ in range(150)
        ]
        + [record(rnd.choice(customers), status="short_abandoned") for _ in range(30)],
        "anonymous": [
            record(rnd.choice(["", "   ", None, "Walk-In", "ANONYMOUS"])) for _ in range(250)
        ],
    }


def test_excluded_contacts_are_counted_not_dead_lettered_and_in_no_figure(
    broker, redis_server, redis_client, tmp_path
):
    stack = Stack(broker.url, redis_server.url, tmp_path)
    worker = stack.start_worker(**SETTINGS)
    try:
        worker.wait_ready()
        now = safe_now_ms()
        by_outcome = contacts_by_outcome(now)
        records = [record for values in by_outcome.values() for record in values]
        random.Random(2).shuffle(records)
        produce(broker.bootstrap, stack.topic, records)
        eventually(lambda: events_total([worker]) >= len(records), timeout=120)

        counted = {
            dict(labels)["outcome"]: value
            for (name, labels), value in worker.metrics().items()
            if name == "rcr_events_total" and value
        }
        assert counted == {outcome: len(values) for outcome, values in by_outcome.items()}
        assert read_topic(broker.bootstrap, stack.dlq_topic, 1, timeout=5) == []

        # The figures are the engine's over the counted contacts only.
        expected = {
            (window, channel, reason): figures
            for window, by_label in offline_figures(records, now, POLICY).items()
            for (channel, reason), figures in by_label.items()
            if figures != Figures()
        }
        eventually(lambda: cluster_figures([worker]) == expected, timeout=30)
        assert expected[("24h", "all", "all")].contacts == len(by_outcome["accepted"])
        # No anonymous "customer" reached the engine or Redis.
        prefix = f"rcr-{stack.name}:customer:"
        customers = {key.removeprefix(prefix) for key in redis_client.keys(prefix + "*")}
        assert customers and all(customer.startswith("cust-") for customer in customers)
        assert worker.get("/readyz")[0] == 200
    finally:
        worker.kill()
