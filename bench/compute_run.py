"""``rcr compute`` on a generated JSON Lines file, as a user runs it (a fresh process)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.progress import line


def compute(path: Path, lines: int, timeout_s: float) -> dict[str, Any]:
    """Wall time of ``python -m stream compute FILE`` (interpreter start-up included)."""
    began = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "stream", "compute", str(path), "--period", "month"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=timeout_s,
        check=True,
    )
    seconds = time.perf_counter() - began
    return line(
        "compute",
        lines,
        seconds,
        lines / seconds,
        unit="events/s (JSON Lines, wall time incl. start-up)",
        file_mb=round(path.stat().st_size / 2**20, 1),
        target_rate=500_000,
    )
