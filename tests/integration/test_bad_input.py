"""Ten thousand bad records at a real worker: every one dead-lettered, counted, nothing stuck."""

from __future__ import annotations

import random

import orjson
import pytest

from tests.integration.test_worker import events_total, eventually
from tests.integration.traffic import produce, read_topic, safe_now_ms
from tests.integration.workers import Stack

pytestmark = pytest.mark.integration
PER_KIND = 1_430  # seven kinds: over 10,000 records
YEAR_MS = 365 * 86_400_000


def bad_records(now_ms: int, seed: int = 7) -> dict[str, list[bytes]]:
    """Malformed records by the reason they must be rejected with."""
    rnd = random.Random(seed)

    def event(**fields: object) -> bytes:
        document = {"contact_id": f"k{rnd.random()}", "customer_id": "c", "timestamp": now_ms}
        document.update(fields)
        return orjson.dumps({k: v for k, v in document.items() if v is not None})

    def garbage() -> bytes:
        return bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 60))) + b"\xff"

    return {
        "invalid_json": [garbage() for _ in range(PER_KIND // 2)]
        + [orjson.dumps(rnd.choice([[1], "text", 3, None, True])) for _ in range(PER_KIND // 2)],
        "missing_field": [
            event(**{rnd.choice(["contact_id", "customer_id", "timestamp"]): None})
            for _ in range(PER_KIND)
        ],
        "bad_type": [
            event(
                **{
                    rnd.choice(["contact_id", "customer_id", "channel", "reason"]): rnd.choice(
                        [1, 2.5, [], {}, True]
                    )
                }
            )
            for _ in range(PER_KIND)
        ],
        "bad_timestamp": [
            event(
                timestamp=rnd.choice(
                    ["yesterday", "2017-13-01T00:00:00Z", "2017-10-01T00:00:00", -1, 1e300]
                )
            )
            for _ in range(PER_KIND)
        ],
        "too_late": [
            event(timestamp=now_ms - rnd.randint(2, 40) * YEAR_MS // 12) for _ in range(PER_KIND)
        ],
        "too_far_in_future": [
            event(timestamp=now_ms + rnd.randint(10, 10**6) * 60_000) for _ in range(PER_KIND)
        ],
        "too_large": [event(channel="x" * 300) for _ in range(PER_KIND - 5)]
        + [event(note="y" * 70_000) for _ in range(5)],
    }


def test_bad_records_are_dead_lettered_with_their_reason(broker, redis_server, tmp_path):
    stack = Stack(broker.url, redis_server.url, tmp_path)
    worker = stack.start_worker()
    try:
        worker.wait_ready()
        now = safe_now_ms()
        by_reason = bad_records(now)
        records = [(b"c", value) for values in by_reason.values() for value in values]
        random.Random(1).shuffle(records)
        assert len(records) >= 10_000
        secret = "customer-who-must-stay-private"
        good = orjson.dumps({"contact_id": "g1", "customer_id": secret, "timestamp": now})
        produce(broker.bootstrap, stack.topic, [*records, (secret.encode(), good)])
        eventually(lambda: events_total([worker]) >= len(records) + 1, timeout=120)

        counted = {
            dict(labels)["reason"]: value
            for (name, labels), value in worker.metrics().items()
            if name == "rcr_events_total" and dict(labels)["outcome"] == "rejected"
        }
        assert counted == {reason: len(values) for reason, values in by_reason.items()}
        accepted = worker.metrics()[("rcr_events_total", (("outcome", "accepted"), ("reason", "")))]
        assert accepted == 1  # the good record after ten thousand poisons went through
        letters = [r.value for r in read_topic(broker.bootstrap, stack.dlq_topic, len(records))]
        assert sorted(letters) == sorted(value for _, value in records)  # bytes unchanged
        assert worker.get("/readyz")[0] == 200

        # No customer id becomes a label or an info-level log line.
        _, metrics_text = worker.get("/metrics")
        assert secret.encode() not in metrics_text
        assert secret not in worker.log.read_text(errors="replace")
    finally:
        worker.kill()
