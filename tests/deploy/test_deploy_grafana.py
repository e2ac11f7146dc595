"""deploy/grafana: generated dashboards are fresh, their queries parse and read real series."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
GRAFANA = REPO / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
SERIES_TOKEN = re.compile(r"\b(?:rcr|faust)[_:][A-Za-z0-9_:]*")
# Grafana variables and sample values that make the expressions plain PromQL.
VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range": "1h",
    "${window}": "1h",
    "$window": "1h",
}


def generator() -> ModuleType:
    """deploy/grafana/generate.py as a module (under a name no other test uses)."""
    spec = importlib.util.spec_from_file_location("grafana_generate", GRAFANA / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def panels(board: dict) -> Iterator[dict]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def expressions(board: dict) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every target and annotation query of a board."""
    for panel in panels(board):
        for target in panel.get("targets", []):
            yield f"{board['uid']}/{panel['title']}/{target['refId']}", target["expr"]
    for annotation in board["annotations"]["list"]:
        if "expr" in annotation:
            yield f"{board['uid']}/annotation {annotation['name']}", annotation["expr"]


def substitute(expr: str) -> str:
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
    return expr


def test_dashboards_exist() -> None:
    assert [p.name for p in DASHBOARDS] == ["rcr-launch-day.json", "rcr-pipeline-health.json"]


def test_dashboards_regenerate_without_diff() -> None:
    result = subprocess.run(
        [sys.executable, str(GRAFANA / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_every_query_parses(promtool: str, tmp_path: Path) -> None:
    """promtool has no command for a bare expression: check them as recording rules."""
    queries = [
        (where, substitute(expr))
        for board in map(load, DASHBOARDS)
        for where, expr in expressions(board)
    ]
    assert len(queries) > 30
    lines = ["groups:", "  - name: dashboard-queries", "    rules:"]
    for i, (where, expr) in enumerate(queries):
        lines += [
            f"      # {where}",
            f"      - record: dashboard:query_{i}",
            f"        expr: {json.dumps(expr)}",
        ]
    rules = tmp_path / "dashboard_queries.yml"
    rules.write_text("\n".join(lines) + "\n")
    result = subprocess.run(
        [promtool, "check", "rules", str(rules)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(queries)} rules found" in result.stdout


def test_queries_read_exported_or_recorded_series(
    known_series: frozenset[str], alerts: frozenset[str]
) -> None:
    for board in map(load, DASHBOARDS):
        for where, expr in expressions(board):
            unknown = set(SERIES_TOKEN.findall(expr)) - known_series
            assert not unknown, f"{where}: {unknown}"
            for pattern in re.findall(r'alertname=~"([^"]+)"', expr):
                named = {a for a in pattern.split("|") if not re.search(r"[.*+]", a)}
                assert named <= alerts, f"{where}: no such alert {named - alerts}"
                assert any(re.fullmatch(pattern, a) for a in alerts), where
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                unknown = set(SERIES_TOKEN.findall(variable["definition"])) - known_series
                assert not unknown, f"{board['uid']} ${variable['name']}: {unknown}"


def test_board_structure() -> None:
    uids = set()
    for board in map(load, DASHBOARDS):
        assert board["uid"] not in uids
        uids.add(board["uid"])
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        ids = [p["id"] for p in panels(board)]
        assert len(ids) == len(set(ids)), f"{board['uid']}: duplicate panel ids"
        occupied: set[tuple[int, int]] = set()
        for panel in panels(board):
            pos = panel["gridPos"]
            assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
            cells = {
                (x, y)
                for x in range(pos["x"], pos["x"] + pos["w"])
                for y in range(pos["y"], pos["y"] + pos["h"])
            }
            assert not cells & occupied, f"{board['uid']}: {panel['title']} overlaps"
            occupied |= cells
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["description"], panel["title"]
            assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == "${datasource}", panel["title"]
            # A variable used in a query must exist on the board.
            for target in panel["targets"]:
                for name in re.findall(r"\$\{?(\w+)", target["expr"]):
                    assert name.startswith("__") or name in variables, (panel["title"], name)


def test_boards_colour_with_the_alert_thresholds() -> None:
    thresholds = generator().load_thresholds()
    board = load(GRAFANA / "dashboards" / "rcr-launch-day.json")
    age = next(p for p in panels(board) if p["title"] == "Newest event age" and p["type"] == "stat")
    steps = age["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[-1] == {"color": "red", "value": thresholds["max_event_age_seconds"]}


def test_provisioning_points_at_the_boards(yaml: ModuleType) -> None:
    generate = generator()
    datasources = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    assert [d["uid"] for d in datasources["datasources"]] == [generate.DATASOURCE_UID]
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/rcr-stream.yml").read_text())
    path = providers["providers"][0]["options"]["path"]
    compose = yaml.safe_load((REPO / "deploy/compose/compose.yaml").read_text())
    grafana = compose["services"]["grafana"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in grafana["volumes"]}
    assert mounts[path] == "../grafana/dashboards"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(path + "/")
    assert (GRAFANA / "dashboards" / Path(home).name).exists()


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_board_is_plain_json_with_tags(path: Path) -> None:
    board = load(path)
    assert board["tags"] == ["rcr-stream"]
    assert board["schemaVersion"] >= 36
    assert path.stem == board["uid"]
