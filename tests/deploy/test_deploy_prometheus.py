"""deploy/prometheus: the scrape config, the rules, and their promtool unit tests."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = REPO / "deploy" / "prometheus"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))
SERIES_TOKEN = re.compile(r"\b(?:rcr|faust)[_:][A-Za-z0-9_:]*")
THRESHOLD = re.compile(r"\brcr:threshold:\w+")
SEVERITIES = {"critical", "warning", "info"}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def load_rules(yaml: ModuleType) -> list[dict]:
    return [
        rule
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def test_rule_files_exist() -> None:
    assert [p.name for p in RULE_FILES] == ["alerts.yml", "recording.yml", "thresholds.yml"]
    assert RULE_TESTS, "no promtool unit tests in deploy/prometheus/tests"


def test_promtool_check_config(promtool: str) -> None:
    result = run(promtool, "check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    # rule_files are relative to prometheus.yml and must find all three files.
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in result.stdout


def test_promtool_check_rules(promtool: str) -> None:
    result = run(promtool, "check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests(promtool: str) -> None:
    # One process per file, in parallel: the spike tests replay a week of history.
    procs = {
        path.name: subprocess.Popen(
            [promtool, "test", "rules", str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for path in RULE_TESTS
    }
    failures = {}
    for name, proc in procs.items():
        output, _ = proc.communicate(timeout=180)
        if proc.returncode != 0:
            failures[name] = output
    assert not failures, "\n".join(f"--- {n}\n{out}" for n, out in failures.items())


def test_every_rule_is_unit_tested(recorded: frozenset[str], alerts: frozenset[str]) -> None:
    """Each alert is shown firing and not firing; each recording rule checked with values."""
    text = "\n".join(path.read_text() for path in RULE_TESTS)
    firing, quiet = set(), set()
    for name, expected in re.findall(r"alertname:\s*(\w+)\s*\n\s*exp_alerts:(.*)", text):
        (quiet if expected.strip() == "[]" else firing).add(name)
    assert alerts - firing == set(), "alerts never shown firing"
    assert alerts - quiet == set(), "alerts never shown quiet"
    valued = set(re.findall(r"labels:\s*'([^'{]+)", text))
    assert recorded - valued == set(), "recording rules without an exact-value check"


def test_alerts_carry_severity_and_runbook(yaml: ModuleType) -> None:
    alerts = [rule for rule in load_rules(yaml) if "alert" in rule]
    assert alerts
    for rule in alerts:
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        annotations = rule["annotations"]
        assert {"summary", "description", "runbook"} <= annotations.keys(), rule["alert"]
        assert len(annotations["runbook"]) > 80, f"{rule['alert']}: runbook too thin"
        assert rule["alert"].startswith("Rcr")
        # Every alert has a section in the operations guide.
        assert rule["alert"] in (REPO / "docs" / "OPERATIONS.md").read_text(), rule["alert"]


def test_rules_read_only_exported_or_recorded_series(
    yaml: ModuleType, known_series: frozenset[str]
) -> None:
    for rule in load_rules(yaml):
        unknown = set(SERIES_TOKEN.findall(rule["expr"])) - known_series
        assert not unknown, f"{rule.get('alert') or rule.get('record')}: {unknown}"


def test_thresholds_defined_once_and_all_used(yaml: ModuleType, recorded: frozenset[str]) -> None:
    rules = load_rules(yaml)
    defined = [r["record"] for r in rules if r.get("record", "").startswith("rcr:threshold:")]
    assert len(defined) == len(set(defined))
    # Only thresholds.yml defines them, as constants without labels.
    text = (PROMETHEUS / "rules" / "thresholds.yml").read_text()
    assert set(defined) == set(re.findall(r"record:\s*(rcr:threshold:\w+)", text))
    for rule in rules:
        if rule.get("record", "").startswith("rcr:threshold:"):
            assert re.fullmatch(r"vector\([-+0-9.eE]+\)", rule["expr"].strip()), rule
            assert "labels" not in rule
    used = {t for r in rules if "alert" in r for t in THRESHOLD.findall(r["expr"])}
    assert used <= recorded, f"undefined thresholds: {used - recorded}"
    assert set(defined) <= used, f"thresholds no alert uses: {set(defined) - used}"


def test_ratios_are_sums_over_workers(yaml: ModuleType) -> None:
    """Never an average of per-worker ratios: every ratio reads summed series."""
    by_name = {r["record"]: r["expr"] for r in load_rules(yaml) if "record" in r}
    assert by_name["rcr:repeat_contact_rate:ratio"].split("/")[0].strip() == (
        "rcr:repeat_customers:sum"
    )
    assert by_name["rcr:customers:sum"] == (
        "sum by (definition, window, channel, reason) (rcr_customers)"
    )
    for name, expr in by_name.items():
        assert "avg" not in expr, name
        assert "rcr_repeat_contact_rate" not in expr and "rcr_contact_rate" not in expr, name


@pytest.mark.parametrize("path", RULE_TESTS, ids=lambda p: p.name)
def test_unit_tests_pin_group_order(path: Path) -> None:
    # Without group_eval_order promtool evaluates groups in random order, and an alert may
    # read the previous evaluation's recorded figures: flaky at coarse intervals.
    assert "group_eval_order:" in path.read_text()
