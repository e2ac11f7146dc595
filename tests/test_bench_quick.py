"""The benchmark harness as a CI smoke test: it runs and its lines make sense (no timing)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ("raw_consumer", "worker", "memory", "compute")


def test_quick_bench_prints_one_positive_line_per_scenario() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", ",".join(SCENARIOS)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(text) for text in done.stdout.splitlines() if text.strip()]
    assert [line["scenario"] for line in lines] == list(SCENARIOS)
    for line in lines:
        assert "error" not in line, line
        assert line["events"] > 0 and line["seconds"] > 0 and line["rate"] > 0, line
    by_name = {line["scenario"]: line for line in lines}
    assert by_name["memory"]["customers"] > 0
    assert by_name["memory"]["bytes_per_customer"] > 0
    assert by_name["worker"]["vs_raw_consumer"] > 0
