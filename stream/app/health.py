"""Liveness and readiness: what /healthz, /readyz and the ``rcr_*_up`` gauges report.

Ready means: partitions recovered and rebuilt, and the broker answering. Redis being down
degrades the lookups but not the figures, so it is reported without failing readiness.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust
from aiokafka import AIOKafkaClient
from aiokafka.errors import KafkaError

from stream.app.broker_access import describe_refusal
from stream.metrics.pipeline import PipelineMetrics

log = logging.getLogger(__name__)

PROBE_INTERVAL_S = 2.0
PROBE_TIMEOUT_S = 3.0


class Health:
    def __init__(
        self, app: faust.App, metrics: PipelineMetrics, client_options: dict[str, Any]
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.client_options = client_options
        self.recovered = False
        self.broker_up = False
        self.broker_problem = ""  # why the last probe failed, for /readyz
        self._bootstrapped = False
        # Problems found on the cluster that make every figure wrong until fixed.
        self.misconfigured: list[str] = []

    @property
    def reasons(self) -> list[str]:
        """Why the worker is not ready; empty when it is."""
        reasons = list(self.misconfigured)
        if not self.recovered:
            reasons.append("recovering: partitions not yet assigned and rebuilt")
        if not self.broker_up:
            reasons.append("broker unreachable")
            if self.broker_problem:  # why, as its own reason: the first one stays stable
                reasons.append(f"broker: {self.broker_problem}")
        return reasons

    @property
    def ready(self) -> bool:
        return not self.reasons

    async def run(self) -> None:
        """Probe the broker forever; a metadata request must answer within the timeout."""
        client = AIOKafkaClient(**self.client_options)
        try:
            while True:
                self._set_broker(await self._probe(client))
                self.metrics.ready.set(1 if self.ready else 0)
                await asyncio.sleep(PROBE_INTERVAL_S)
        finally:
            await client.close()

    async def check_partitions(self, topic: str, expected: int, setting: str) -> None:
        """Routing counts on ``expected`` partitions: a topic with another count would send
        every customer to the wrong partition, so the worker refuses to look ready."""
        client = AIOKafkaClient(**self.client_options)
        try:
            await client.bootstrap()
            await client.fetch_all_metadata()
            actual = client.cluster.partitions_for_topic(topic)
        except (KafkaError, OSError) as exc:
            log.warning("could not check the partitions of %s: %s", topic, exc)
            return
        finally:
            await client.close()
        # That was a probe: the periodic one starts beside the Redis projection, which
        # after a restore writes every restored customer and would hold up its first answer.
        self._set_broker(True)
        if actual is not None and len(actual) != expected:
            problem = f"topic {topic} has {len(actual)} partitions but {setting}={expected}"
            log.error("%s: set %s to the topic's partition count", problem, setting)
            self.misconfigured.append(problem)

    async def _probe(self, client: AIOKafkaClient) -> bool:
        try:
            if not self._bootstrapped:
                await asyncio.wait_for(client.bootstrap(), PROBE_TIMEOUT_S)
                self._bootstrapped = True
            await asyncio.wait_for(client.fetch_all_metadata(), PROBE_TIMEOUT_S)
        except (TimeoutError, KafkaError, OSError, KeyError, ValueError) as exc:
            # KeyError/ValueError: how aiokafka reports a refused SASL SCRAM exchange; the
            # probe must survive it and say so rather than end the health task.
            self.broker_problem = describe_refusal(exc, self.client_options)
            return False
        self.broker_problem = ""
        return True

    def _set_broker(self, up: bool) -> None:
        if up != self.broker_up:
            log.log(
                logging.INFO if up else logging.WARNING,
                "broker %s",
                "reachable" if up else "unreachable",
            )
        self.broker_up = up
        self.metrics.broker_up.set(1 if up else 0)
