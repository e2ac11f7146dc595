"""HTTP polling of one worker for ``rcr top``: stdlib only, short timeouts, never raises.

Requests run one after the other: the worker answers from memory in milliseconds, and when
/rates fails the rest is skipped, so a hung worker costs one timeout per refresh, not five.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from stream.top.model import (
    JSON,
    Drilldown,
    Health,
    Readiness,
    Snapshot,
    parse_metrics,
    parse_readiness,
)


class Unreachable(Exception):
    """The worker could not be asked: connection refused, timeout, DNS, bad answer."""


@dataclass
class WorkerClient:
    """Reads /rates, /metrics, /readyz and, when the worker has them, /top and /bursts."""

    url: str
    token: str | None = None
    timeout: float = 3.0
    top_window: str = "7d"
    limit: int = 10
    last_success_at: float | None = None

    def fetch(self) -> Snapshot:
        """One refresh. An unreachable worker gives a snapshot with ``error``, not an exception."""
        now = time.time()
        try:
            rates = self._get_document("/rates")
        except Unreachable as exc:
            return Snapshot(self.url, now, error=str(exc), last_success_at=self.last_success_at)
        self.last_success_at = now
        return Snapshot(
            self.url,
            now,
            rates=rates,
            health=self._health(),
            readiness=self._readiness(),
            top=self._drilldown("/top", {"window": self.top_window}, "customers"),
            bursts=self._drilldown("/bursts", {}, "bursts"),
            last_success_at=now,
        )

    def _health(self) -> Health | None:
        try:
            status, body = self._get("/metrics")
        except Unreachable:
            return None
        return parse_metrics(body.decode("utf-8", "replace")) if status == 200 else None

    def _readiness(self) -> Readiness | None:
        try:
            status, body = self._get("/readyz")
            document = json.loads(body) if status in (200, 503) else None
        except (Unreachable, ValueError):
            return None
        return parse_readiness(document) if isinstance(document, dict) else None

    def _drilldown(self, path: str, query: dict[str, str], key: str) -> Drilldown:
        """404 hides the panel (older worker); 401 says which setting is missing."""
        query = {**query, "limit": str(self.limit)}
        window = query.get("window")
        try:
            status, body = self._get(f"{path}?{urllib.parse.urlencode(query)}")
        except Unreachable as exc:
            return Drilldown(note=str(exc), window=window)
        if status == 404:
            return Drilldown()
        if status == 401:
            return Drilldown(note="unauthorized: set RCR_API_TOKEN (--api-token)", window=window)
        try:
            document = json.loads(body)
        except ValueError:
            return Drilldown(note=f"HTTP {status}: not JSON", window=window)
        if status != 200 or not isinstance(document, dict):
            error = document.get("error") if isinstance(document, dict) else None
            return Drilldown(note=f"HTTP {status}: {error or 'error'}", window=window)
        rows = [row for row in document.get(key) or [] if isinstance(row, dict)]
        return Drilldown(rows=rows, window=str(document.get("window") or window or ""))

    def _get_document(self, path: str) -> JSON:
        status, body = self._get(path)
        if status != 200:
            raise Unreachable(f"HTTP {status} on {path}")
        try:
            document = json.loads(body)
        except ValueError:
            raise Unreachable(f"{path} did not answer JSON") from None
        if not isinstance(document, dict):
            raise Unreachable(f"{path} did not answer a JSON object")
        return document

    def _get(self, path: str) -> tuple[int, bytes]:
        """Status and body; HTTP errors are answers, only transport failures raise."""
        request = urllib.request.Request(self.url + path, headers={"Accept": "application/json"})
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return int(response.status), bytes(response.read())
        except urllib.error.HTTPError as error:
            return int(error.code), bytes(error.read())
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise Unreachable(_reason(exc)) from None


def _reason(exc: Exception) -> str:
    """``Connection refused`` rather than ``<urlopen error [Errno 111] ...>``."""
    reason = getattr(exc, "reason", exc)
    text = getattr(reason, "strerror", None) or str(reason)
    return str(text) or type(exc).__name__
