"""A real Prometheus for integration tests: Debian's ``prometheus`` as a subprocess.

``PrometheusServer.start`` runs it on a free loopback port with its own data directory and
``--web.enable-lifecycle`` (so a test can ``reload``); the methods wrap the HTTP API
(``/api/v1/query``, ``query_range``, ``alerts``, ``rules``, ``targets``, label values).
``backfill`` writes OpenMetrics samples into a data directory with ``promtool tsdb
create-blocks-from openmetrics`` before Prometheus starts: history a fresh server lacks.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stream.embedded import free_port

START_TIMEOUT_S = 60.0


class PrometheusMissingError(RuntimeError):
    """``prometheus`` or ``promtool`` is not installed."""


def binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise PrometheusMissingError(
            f"{name} not found on PATH (Debian package `prometheus`: make system-deps)"
        )
    return path


@dataclass(frozen=True)
class Sample:
    """One backfilled sample: ``labels`` without ``__name__``, ``at`` in epoch seconds."""

    name: str
    labels: Mapping[str, str]
    value: float
    at: float


def openmetrics(samples: Iterable[Sample]) -> str:
    """Samples as an OpenMetrics text (every family typed ``gauge``), ending ``# EOF``.

    promtool wants each family's samples together and in time order within a series.
    """
    by_name: dict[str, list[Sample]] = {}
    for sample in samples:
        by_name.setdefault(sample.name, []).append(sample)
    lines: list[str] = []
    for name, family in by_name.items():
        lines.append(f"# TYPE {name} gauge")
        family.sort(key=lambda s: (sorted(s.labels.items()), s.at))
        for sample in family:
            labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(sample.labels.items()))
            lines.append(f"{name}{{{labels}}} {_number(sample.value)} {sample.at:.3f}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return repr(float(value)) if math.isfinite(value) else str(value)


def backfill(samples: Iterable[Sample], data_dir: Path, work_dir: Path) -> None:
    """Turn samples into TSDB blocks in ``data_dir`` (before Prometheus starts on it)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    source = work_dir / "backfill.om"
    source.write_text(openmetrics(samples))
    command = ["tsdb", "create-blocks-from", "openmetrics", str(source), str(data_dir)]
    result = subprocess.run(
        [binary("promtool"), *command],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise AssertionError(f"promtool backfill failed:\n{result.stdout}\n{result.stderr}")


class PrometheusError(AssertionError):
    pass


@dataclass
class PrometheusServer:
    process: subprocess.Popen[bytes]
    port: int
    config: Path
    log: Path

    @classmethod
    def start(cls, config: Path, data_dir: Path, log: Path) -> PrometheusServer:
        port = free_port()
        handle = log.open("wb")
        process = subprocess.Popen(
            [
                binary("prometheus"),
                f"--config.file={config}",
                f"--storage.tsdb.path={data_dir}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--web.enable-lifecycle",
                "--storage.tsdb.retention.time=15d",
            ],
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        handle.close()
        return cls(process, port, config, log)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle ---------------------------------------------------------------------------

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PrometheusError(f"prometheus exited:\n{self.tail()}")
            try:
                if self._request("/-/ready")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise PrometheusError(f"prometheus not ready after {timeout}s:\n{self.tail()}")

    def reload(self) -> None:
        status, body = self._request("/-/reload", data=b"")
        if status != 200:
            raise PrometheusError(f"reload failed ({status}): {body!r}\n{self.tail()}")

    def stop(self, timeout: float = 15) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    # -- HTTP API ----------------------------------------------------------------------------

    def _request(self, path: str, data: bytes | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(self.base + path, data=data)
        if data is not None:
            request.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def api(self, path: str, **params: Any) -> Any:
        """``data`` of a successful API answer (GET, parameters in the query string)."""
        query = urllib.parse.urlencode(params, doseq=True)
        status, raw = self._request(f"/api/v1/{path}" + (f"?{query}" if query else ""))
        answer = json.loads(raw)
        if status != 200 or answer.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {status} {answer}")
        return answer["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query's vector (``resultType`` vector or scalar as one sample)."""
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self.api("query", **params)
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        data = self.api(
            "query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=str(step)
        )
        return list(data["result"])

    def label_values(self, label: str, match: str) -> list[str]:
        return list(self.api(f"label/{urllib.parse.quote(label)}/values", **{"match[]": match}))

    def alerts(self) -> list[dict[str, Any]]:
        return list(self.api("alerts")["alerts"])

    def rule_groups(self) -> list[dict[str, Any]]:
        return list(self.api("rules")["groups"])

    def targets(self) -> list[dict[str, Any]]:
        return list(self.api("targets")["activeTargets"])
