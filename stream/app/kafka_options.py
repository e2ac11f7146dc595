"""Connection options for the plain aiokafka clients the worker runs beside Faust."""

from __future__ import annotations

from typing import Any

from stream.settings import Settings


def client_options(settings: Settings) -> dict[str, Any]:
    return {"bootstrap_servers": settings.bootstrap_servers, "request_timeout_ms": 10_000}
