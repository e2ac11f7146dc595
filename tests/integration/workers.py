"""Real worker processes for integration tests: ``python -m stream worker`` on a real broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from stream.embedded import free_port

READY_TIMEOUT_S = 60.0


@dataclass
class Stack:
    """One isolated deployment on the shared broker and Redis: its own topics and group."""

    broker_url: str
    redis_url: str
    tmp: Path
    name: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    @property
    def topic(self) -> str:
        return f"contacts-{self.name}"

    @property
    def dlq_topic(self) -> str:
        return f"contacts-dlq-{self.name}"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RCR_")}
        env.update(
            {
                "RCR_BROKER": self.broker_url,
                "RCR_REDIS_URL": self.redis_url,
                "RCR_APP_ID": f"rcr-{self.name}",
                "RCR_TOPIC": self.topic,
                "RCR_DLQ_TOPIC": self.dlq_topic,
                "RCR_CUSTOMER_BASE_TOPIC": f"customer-base-{self.name}",
                "RCR_REDIS_PREFIX": f"rcr-{self.name}:",
                "RCR_BROKER_SESSION_TIMEOUT": "3",
                "RCR_BROKER_HEARTBEAT_INTERVAL": "0.5",
                "RCR_COMMIT_INTERVAL": "1",
            }
        )
        env.update(extra)
        return env

    def start_worker(self, **extra: str) -> WorkerProcess:
        port = free_port()
        env = self.env(
            RCR_WEB_PORT=str(port),
            RCR_WEB_HOST="127.0.0.1",
            RCR_STATE_DIR=str(self.tmp / f"state-{port}"),
            **extra,
        )
        log = (self.tmp / f"worker-{port}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "stream", "worker"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return WorkerProcess(process, port, Path(log.name))


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.base + path, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited:\n{self.tail()}")
            try:
                if self.get("/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"worker not ready after {timeout}s:\n{self.tail()}")

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of /metrics as {(name, sorted labels): value}."""
        _, body = self.get("/metrics")
        samples = {}
        for family in text_string_to_metric_families(body.decode()):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()
