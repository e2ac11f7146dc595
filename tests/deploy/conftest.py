"""Fixtures of the deploy/ tests: fast, offline, no Docker.

promtool (Debian's `prometheus` package, installed by `make system-deps`) and PyYAML are
required: without them these tests skip locally and fail under CI=true, like the rest of the
suite. kubectl is optional (only `kubectl kustomize` is used, offline).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from types import ModuleType

import pytest

RULE_FILES = sorted((Path(__file__).resolve().parents[2] / "deploy/prometheus/rules").glob("*.yml"))

# What the workers export: contract section 3, the worker's additions, and the Faust sensors
# the boards use (prometheus_client adds _total to counters, _bucket/_sum/_count to histograms).
WORKER_METRICS = frozenset(
    {
        "rcr_customers",
        "rcr_repeat_customers",
        "rcr_contacts",
        "rcr_repeat_contacts",
        "rcr_repeat_contact_rate",
        "rcr_resolved_contacts",
        "rcr_unresolved_contacts",
        "rcr_provisional_contacts",
        "rcr_first_contact_resolution_rate",
        "rcr_resolution_maturity_ratio",
        "rcr_definition_info",
        "rcr_dimension_customers",
        "rcr_dimension_repeat_customers",
        "rcr_dimension_contacts",
        "rcr_dimension_repeat_contacts",
        "rcr_dimension_resolved_contacts",
        "rcr_dimension_unresolved_contacts",
        "rcr_dimension_provisional_contacts",
        "rcr_dimension_repeat_contact_rate",
        "rcr_dimension_first_contact_resolution_rate",
        "rcr_definition_customers",
        "rcr_definition_repeat_customers",
        "rcr_definition_repeat_contacts",
        "rcr_definition_resolved_contacts",
        "rcr_definition_unresolved_contacts",
        "rcr_definition_provisional_contacts",
        "rcr_definition_repeat_contact_rate",
        "rcr_definition_first_contact_resolution_rate",
        "rcr_contact_rate",
        "rcr_customer_base",
        "rcr_denominator",
        "rcr_contacts_per_denominator",
        "rcr_denominator_records_total",
        "rcr_events_total",
        "rcr_event_lag_seconds_bucket",
        "rcr_event_lag_seconds_sum",
        "rcr_event_lag_seconds_count",
        "rcr_last_event_timestamp_seconds",
        "rcr_consumer_lag_records",
        "rcr_redis_write_errors_total",
        "rcr_ready",
        "rcr_broker_up",
        "rcr_redis_up",
        "rcr_redis_pending_customers",
        "rcr_batch_processing_seconds_bucket",
        "faust_messages_received_total",
        "faust_total_sent_messages_total",
        "faust_consumer_commit_latency_bucket",
        "faust_total_rebalances",
        "faust_topic_partition_end_offset",
    }
)


def require(what: str, hint: str) -> None:
    """Missing test dependency: a failure under CI=true, a skip otherwise."""
    message = f"{what} is not available ({hint})"
    if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        require("promtool", "install Debian's prometheus package: make system-deps")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def yaml() -> ModuleType:
    try:
        import yaml as module
    except ImportError:
        require("PyYAML", "add pyyaml to the dev dependencies")
    return module


@pytest.fixture(scope="session")
def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.skip("kubectl is not installed: kustomize builds not checked")
    return path


def _rule_names(kind: str) -> frozenset[str]:
    pattern = re.compile(rf"^\s*-\s*{kind}:\s*(\S+)\s*$", re.M)
    return frozenset(name for path in RULE_FILES for name in pattern.findall(path.read_text()))


@pytest.fixture(scope="session")
def recorded() -> frozenset[str]:
    """Names of the recording rules in deploy/prometheus/rules."""
    return _rule_names("record")


@pytest.fixture(scope="session")
def alerts() -> frozenset[str]:
    """Names of the alerts in deploy/prometheus/rules."""
    return _rule_names("alert")


@pytest.fixture(scope="session")
def known_series(recorded: frozenset[str]) -> frozenset[str]:
    """Every series name a rule or a dashboard may read."""
    return WORKER_METRICS | recorded
