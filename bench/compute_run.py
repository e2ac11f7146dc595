"""``rcr compute`` on a generated JSON Lines file, as a user runs it (a fresh process).

Beside it, in the same run, the slow path it replaced: ``decode_contact`` on every line,
then ``collect_timelines`` and ``figures_per_period`` (``python -m bench.compute_run FILE``),
so the speed-up is a ratio measured on the same machine at the same time, and the two
outputs are compared byte for byte.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.progress import line


def compute(path: Path, lines: int, timeout_s: float) -> dict[str, Any]:
    """Wall time of ``python -m stream compute FILE`` (interpreter start-up included)."""
    fast = [sys.executable, "-m", "stream", "compute", str(path), "--period", "month"]
    fast_s, fast_out = _timed(fast, timeout_s)
    slow_s, slow_out = _timed([sys.executable, "-m", "bench.compute_run", str(path)], timeout_s)
    return line(
        "compute",
        lines,
        fast_s,
        lines / fast_s,
        unit="events/s (JSON Lines, wall time incl. start-up)",
        file_mb=round(path.stat().st_size / 2**20, 1),
        target_rate=500_000,
        slow_path_rate=lines / slow_s,
        speedup=slow_s / fast_s,
        same_output=fast_out == slow_out,
    )


def _timed(command: list[str], timeout_s: float) -> tuple[float, bytes]:
    began = time.perf_counter()
    done = subprocess.run(
        command,
        capture_output=True,
        timeout=timeout_s,
        check=True,
    )
    return time.perf_counter() - began, done.stdout


def slow_path(path: Path) -> bytes:
    """The figures as ``rcr compute``'s engine path computes them, line by line, as JSON
    (months, UTC, the default exclusions): what the fast path must print too."""
    import orjson

    from stream.cli.compute import _as_json, _exclusions_json
    from stream.cli.compute_engine import engine_figures
    from stream.engine import Calendar, PeriodKind
    from stream.engine.batch import PeriodFinder
    from stream.engine.exclusions import ExcludedContacts, ExclusionPolicy

    calendar = Calendar("UTC")
    excluded = ExcludedContacts(ExclusionPolicy(), PeriodFinder(calendar, PeriodKind.MONTH))
    results = engine_figures(
        [path], excluded, calendar, PeriodKind.MONTH, 7 * 86_400_000, lambda *_: None
    )
    rows = [_as_json(r, calendar, None) | _exclusions_json(r, excluded) for r in results]
    return orjson.dumps(rows, option=orjson.OPT_INDENT_2) + b"\n"


if __name__ == "__main__":
    sys.stdout.buffer.write(slow_path(Path(sys.argv[1])))
