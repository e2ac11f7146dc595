"""The broker, Redis and worker processes a benchmark run starts, and how it stops them.

Every child gets ``PR_SET_PDEATHSIG`` (killed if the harness dies) and is stopped in a
``finally``: a benchmark must never leave processes behind on a shared machine.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from stream.embedded import EmbeddedBroker, EmbeddedRedis, free_port

_PR_SET_PDEATHSIG = 1
STOP_GRACE_S = 10.0


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def spawn(
    args: list[str], log: Path, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """A child process whose output goes to ``log`` and which dies with the harness."""
    with log.open("wb") as out:
        return subprocess.Popen(
            args,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )


def stop(process: subprocess.Popen[bytes], grace: float = STOP_GRACE_S) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(grace)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, every thread) a process has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int | str = "self") -> int:
    """Resident set size of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


@dataclass
class Services:
    """One broker, one Redis and a scratch directory for the whole run."""

    broker: EmbeddedBroker
    redis: EmbeddedRedis
    tmp: Path

    def stack(self, source_topic: str | None = None, code: Path | None = None) -> Stack:
        return Stack(self, source_topic=source_topic, code=code)


@contextlib.contextmanager
def services() -> Iterator[Services]:
    with (
        tempfile.TemporaryDirectory(prefix="rcr-bench-") as tmp,
        EmbeddedBroker() as broker,
        EmbeddedRedis() as redis,
    ):
        yield Services(broker, redis, Path(tmp))


@dataclass
class Stack:
    """An isolated deployment on the shared services: its own topics, group and prefix."""

    services: Services
    name: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    source_topic: str | None = None  # read an existing topic instead of our own
    code: Path | None = None  # run the worker of another checkout (a baseline) instead of ours

    @property
    def app_id(self) -> str:
        return f"bench-{self.name}"

    @property
    def topic(self) -> str:
        return self.source_topic or f"contacts-{self.name}"

    @property
    def redis_prefix(self) -> str:
        return f"rcr-{self.name}:"

    @property
    def changelog_topic(self) -> str:
        """The Faust table's changelog (``<app id>-<table>-changelog``)."""
        return f"{self.app_id}-customers-changelog"

    def env(self, port: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RCR_")}
        env.update(
            RCR_BROKER=self.services.broker.url,
            RCR_REDIS_URL=self.services.redis.url,
            RCR_APP_ID=self.app_id,
            RCR_TOPIC=self.topic,
            RCR_DLQ_TOPIC=f"contacts-dlq-{self.name}",
            RCR_CUSTOMER_BASE_TOPIC=f"customer-base-{self.name}",
            RCR_REDIS_PREFIX=self.redis_prefix,
            RCR_WEB_HOST="127.0.0.1",
            RCR_WEB_PORT=str(port),
            RCR_STATE_DIR=str(self.services.tmp / f"state-{self.name}-{port}"),
            RCR_BROKER_SESSION_TIMEOUT="3",
            RCR_BROKER_HEARTBEAT_INTERVAL="0.5",
            RCR_COMMIT_INTERVAL="1",
            RCR_LOG_LEVEL="warning",
        )
        return env

    def start_worker(self) -> WorkerProcess:
        port = free_port()
        log = self.services.tmp / f"worker-{self.name}-{port}.log"
        env = self.env(port)
        if self.code is not None:  # ``python -m stream`` imports from there first
            env["PYTHONPATH"] = str(self.code)
        process = spawn([sys.executable, "-m", "stream", "worker"], log, env, cwd=self.code)
        return WorkerProcess(process, port, log, time.monotonic())


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    started: float  # monotonic

    @property
    def pid(self) -> int:
        return self.process.pid

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        url = f"http://127.0.0.1:{self.port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"worker exited with {self.process.returncode}:\n{tail(self.log)}")

    def ready(self) -> bool:
        self.check_alive()
        try:
            return self.get("/readyz")[0] == 200
        except OSError:
            return False

    def wait_ready(self, timeout: float, poll_s: float = 0.1) -> float:
        """Seconds from process start to the first /readyz 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready():
                return time.monotonic() - self.started
            time.sleep(poll_s)
        raise TimeoutError(f"worker not ready after {timeout:.0f}s:\n{tail(self.log)}")

    def samples(self) -> dict[str, list[tuple[dict[str, str], float]]]:
        """Every /metrics sample, by name."""
        _, body = self.get("/metrics")
        out: dict[str, list[tuple[dict[str, str], float]]] = {}
        for family in text_string_to_metric_families(body.decode()):
            for sample in family.samples:
                out.setdefault(sample.name, []).append((sample.labels, sample.value))
        return out

    def events_total(self) -> float:
        """``rcr_events_total`` summed over outcomes and reasons (a line scan, no parser:
        the harness polls it often and shares two cores with the worker)."""
        _, body = self.get("/metrics")
        total = 0.0
        for line in body.split(b"\n"):
            if line.startswith(b"rcr_events_total{"):
                total += float(line.rsplit(b" ", 1)[1])
        return total

    def stop(self) -> None:
        stop(self.process)


@contextlib.contextmanager
def running_worker(stack: Stack) -> Iterator[WorkerProcess]:
    worker = stack.start_worker()
    try:
        yield worker
    finally:
        worker.stop()
