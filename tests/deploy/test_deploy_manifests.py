"""Dockerfile, compose and Kubernetes manifests, validated statically (no Docker here).

They parse, name the same image, set only real RCR_* settings, and wire the pieces together:
ports, probes, mounts, the scrape targets, and the PrometheusRule made from the rule files.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from stream.settings import Settings, env_name

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "compose" / "compose.yaml"
K8S = DEPLOY / "k8s"
IMAGE = "rcr-stream"
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
SETTINGS = {env_name(field) for field in Settings.model_fields}
WEB_PORT = 6066


def env_file(path: Path) -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    return {key: value for key, value in pairs}


def k8s_docs(yaml: ModuleType) -> Iterator[tuple[Path, dict]]:
    for path in sorted(K8S.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                yield path, doc


def k8s_objects(yaml: ModuleType, kind: str) -> list[dict]:
    return [doc for _, doc in k8s_docs(yaml) if doc.get("kind") == kind]


@pytest.fixture(scope="module")
def compose(yaml: ModuleType) -> dict:
    return yaml.safe_load(COMPOSE.read_text())


# --- Dockerfile -------------------------------------------------------------------------------


def test_dockerfile() -> None:
    text = (REPO / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\w+))?", text, re.M)
    assert len(stages) >= 2, "multi-stage build"
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in text
    assert all(image == "${PYTHON_IMAGE}" for image, _ in stages)
    assert "pip install -c constraints.txt ." in text
    user = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert user and not user[-1].startswith(("0", "root")), "runs as non-root"
    assert 'ENTRYPOINT ["rcr"]' in text and 'CMD ["worker"]' in text
    healthcheck = re.search(r"^HEALTHCHECK .*?CMD (\[.*?\])$", text, re.M | re.S)
    assert healthcheck, "HEALTHCHECK"
    assert "/healthz" in healthcheck.group(1) and "curl" not in healthcheck.group(1)
    assert f"EXPOSE {WEB_PORT}" in text
    assert re.search(rf'org\.opencontainers\.image\.title="{IMAGE}"', text)
    assert f"ARG VERSION={VERSION}" in text
    state_dir = re.search(r"^\s+RCR_STATE_DIR=(\S+)$", text, re.M)
    assert state_dir and f"mkdir -p {state_dir.group(1)}" in text


def test_healthcheck_command_is_valid_python() -> None:
    text = (REPO / "Dockerfile").read_text()
    command = re.search(r'"-c", "(.*)"\]', text)
    assert command
    compile(command.group(1), "HEALTHCHECK", "exec")


def test_dockerignore_allows_only_the_package() -> None:
    lines = [
        line
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert {"pyproject.toml", "constraints.txt", "stream"} <= allowed
    assert not allowed & {".venv", ".git", "deploy", "tests"}


# --- compose ----------------------------------------------------------------------------------


def test_compose_services(compose: dict) -> None:
    services = compose["services"]
    assert {
        "kafka",
        "kafka-init",
        "redis",
        "worker-1",
        "worker-2",
        "simulator",
        "prometheus",
        "grafana",
    } <= services.keys()
    assert "KAFKA_PROCESS_ROLES" in services["kafka"]["environment"], "KRaft mode"
    assert services["kafka"]["image"].startswith("apache/kafka:")
    for name in ("worker-1", "worker-2", "simulator"):
        service = services[name]
        assert service["image"] == f"{IMAGE}:{VERSION}"
        assert service["build"]["context"] == "../.."
        assert (COMPOSE.parent / service["build"]["context"] / "Dockerfile").exists()
        assert service["environment"]["RCR_BROKER"] == "kafka://kafka:9092"
        assert service["environment"]["RCR_REDIS_URL"] == "redis://redis:6379/0"
        assert set(service["environment"]) <= SETTINGS, name
    assert services["worker-1"]["command"] == ["worker"]
    assert services["worker-2"]["command"] == ["worker"]
    simulator = services["simulator"]["command"]
    assert simulator[0] == "simulate"
    # The contact rate's stand-in base is the simulated population.
    assert f"--customers={services['simulator']['environment']['RCR_CUSTOMER_BASE']}" in simulator
    published = [p for n in ("worker-1", "worker-2") for p in services[n]["ports"]]
    assert all(p.endswith(f":{WEB_PORT}") for p in published)
    assert len({p.rsplit(":", 1)[0] for p in published}) == 2, "distinct host ports"


def test_compose_topics_match_worker_partitions(compose: dict) -> None:
    services = compose["services"]
    partitions = services["worker-1"]["environment"]["RCR_TOPIC_PARTITIONS"]
    script = services["kafka-init"]["command"][0]
    assert set(re.findall(r"--partitions (\d+)", script)) == {partitions}
    assert "cleanup.policy=compact" in script


def test_compose_bind_mounts_exist(compose: dict) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), f"{name}: {source}"


def test_prometheus_scrapes_the_compose_workers(compose: dict, yaml: ModuleType) -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = [t for sc in jobs["rcr-worker"]["static_configs"] for t in sc["targets"]]
    workers = [s for s in compose["services"] if s.startswith("worker-")]
    assert sorted(targets) == sorted(f"{w}:{WEB_PORT}" for w in workers)
    assert config["rule_files"] == ["rules/*.yml"]
    prometheus = compose["services"]["prometheus"]
    assert "../prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    retention = next(c for c in prometheus["command"] if "retention.time" in c)
    assert int(retention.rsplit("=", 1)[1].removesuffix("d")) > 7, "baselines need a week"


# --- Kubernetes -------------------------------------------------------------------------------


def test_k8s_manifests_parse(yaml: ModuleType) -> None:
    kinds = {doc["kind"] for _, doc in k8s_docs(yaml)}
    assert {
        "Kustomization",
        "StatefulSet",
        "Service",
        "ServiceMonitor",
        "PrometheusRule",
        "Secret",
        "PodDisruptionBudget",
    } <= kinds


def test_statefulset(yaml: ModuleType) -> None:
    (sts,) = k8s_objects(yaml, "StatefulSet")
    spec = sts["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["image"] == IMAGE
    assert container["args"] == ["worker"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["terminationGracePeriodSeconds"] >= 60, "room for the final commit"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    env = {e["name"]: e["value"] for e in container["env"]}
    assert set(env) <= SETTINGS
    assert int(env["RCR_WEB_PORT"]) == container["ports"][0]["containerPort"] == WEB_PORT
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    claims = {c["metadata"]["name"] for c in sts["spec"]["volumeClaimTemplates"]}
    assert mounts["data"] == env["RCR_STATE_DIR"] and "data" in claims
    sources = {next(iter(s)): next(iter(s.values()))["name"] for s in container["envFrom"]}
    assert sources == {"configMapRef": "rcr-stream-config", "secretRef": "rcr-stream-secrets"}
    (headless,) = [s for s in k8s_objects(yaml, "Service") if s["spec"].get("clusterIP") == "None"]
    assert sts["spec"]["serviceName"] == headless["metadata"]["name"]
    assert headless["spec"]["publishNotReadyAddresses"] is True


def test_servicemonitor_scrapes_each_worker_once(yaml: ModuleType) -> None:
    (monitor,) = k8s_objects(yaml, "ServiceMonitor")
    selector = monitor["spec"]["selector"]["matchLabels"]
    matching = [
        s
        for s in k8s_objects(yaml, "Service")
        if selector.items() <= s["metadata"].get("labels", {}).items()
    ]
    assert len(matching) == 1, "exactly one Service, or every worker is scraped twice"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in matching[0]["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    assert {"action": "replace", "targetLabel": "job", "replacement": "rcr-worker"} in endpoint[
        "relabelings"
    ]


def test_k8s_settings_are_real_and_secrets_stay_secret(yaml: ModuleType) -> None:
    config = env_file(K8S / "base" / "config.env")
    overlay = env_file(K8S / "overlays" / "example" / "config.env")
    (secret,) = k8s_objects(yaml, "Secret")
    secret_keys = set(secret["stringData"])
    assert set(config) | set(overlay) | secret_keys <= SETTINGS
    assert set(overlay) <= set(config), "the overlay overrides, it does not add"
    assert not (set(config) | set(overlay)) & secret_keys, "a key in both ConfigMap and Secret"
    assert {"RCR_API_TOKEN", "RCR_REDIS_URL"} <= secret_keys
    assert not any("password" in v or "@" in v for v in config.values())


def test_k8s_image_and_version(yaml: ModuleType) -> None:
    base = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    overlay = yaml.safe_load((K8S / "overlays" / "example" / "kustomization.yaml").read_text())
    assert base["images"] == [{"name": IMAGE, "newTag": VERSION}]
    (image,) = overlay["images"]
    assert image["name"] == IMAGE and image["newTag"] == VERSION
    assert image["newName"].endswith("/" + IMAGE)


def test_prometheusrule_regenerates_without_diff() -> None:
    result = subprocess.run(
        [sys.executable, str(K8S / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_prometheusrule_equals_the_rule_files(yaml: ModuleType) -> None:
    rules = {
        doc["metadata"]["name"]: doc["spec"]
        for doc in yaml.safe_load_all((K8S / "base" / "prometheusrule.yaml").read_text())
        if doc
    }
    files = sorted((DEPLOY / "prometheus" / "rules").glob("*.yml"))
    assert set(rules) == {f"rcr-stream-{path.stem}" for path in files}
    for path in files:
        assert rules[f"rcr-stream-{path.stem}"] == yaml.safe_load(path.read_text()), path.name


@pytest.mark.parametrize("target", ["base", "overlays/example"])
def test_kustomize_builds(kubectl: str, yaml: ModuleType, target: str) -> None:
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S / target)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    (sts,) = [d for d in docs if d["kind"] == "StatefulSet"]
    (configmap,) = [d for d in docs if d["kind"] == "ConfigMap"]
    container = sts["spec"]["template"]["spec"]["containers"][0]
    # The generated ConfigMap's hashed name is what the pods read.
    assert container["envFrom"][0]["configMapRef"]["name"] == configmap["metadata"]["name"]
    assert container["image"].rsplit(":", 1)[1] == VERSION
