"""Shared fixtures: one embedded broker and one Redis per test session.

A missing binary skips the tests that need it on a developer machine, but fails them under
CI (``CI=true``): a green CI that skipped every integration test would prove nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
import redis

from stream.embedded import BinaryNotFoundError, EmbeddedBroker, EmbeddedRedis

T = TypeVar("T", EmbeddedBroker, EmbeddedRedis)


def in_ci() -> bool:
    """True on CI, where every test dependency must be present."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require_binary(start: Callable[[], T]) -> T:
    """Start a service; skip (locally) or fail (CI) when its executable is not installed."""
    try:
        return start()
    except BinaryNotFoundError as exc:
        message = f"{exc} (install it: `make install`)"
    if in_ci():
        pytest.fail(f"CI=true and a test dependency is missing: {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def start_service() -> Callable[[Callable[[], T]], T]:
    """``require_binary`` for tests that start a private service (outage, password, ...)."""
    return require_binary


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    """A Tansu broker on a free port, memory storage, shared by the whole session."""
    service = require_binary(lambda: EmbeddedBroker().start())
    yield service
    service.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedRedis]:
    """A throw-away redis-server on a free port, shared by the whole session."""
    service = require_binary(lambda: EmbeddedRedis().start())
    yield service
    service.stop()


@pytest.fixture
def redis_client(redis_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    """A client on an empty database 0, so tests never see each other's keys."""
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    client.flushdb()
    yield client
    client.close()
