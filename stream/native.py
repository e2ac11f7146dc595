"""The per-event modules compiled with mypyc: the same source, run as C.

The engine, record validation, the Redis lookups and the batch processor are plain, fully
typed Python; mypyc (mypy's compiler) turns them into C extensions that run the live
per-event path about 1.7x faster (docs/BENCHMARKS.md).
``make install`` compiles them in place when a C compiler is present; without one, or on
``rcr`` installed from a wheel, the package runs as plain Python with the same results.

Python imports a compiled module in preference to its source, so a module edited after it
was compiled would silently run the old code: ``stale_modules`` finds those, and importing
``stream`` refuses to start with them (``make install``, or ``python stream/native.py`` as
a script, without importing the package, rebuilds).
"""

from __future__ import annotations

import importlib.machinery
import os
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
# The modules the per-event path spends its time in: the engine's state and figures, a
# record's validation, the batch loop around them, and a changed customer's lookup.
COMPILED = (
    "stream/engine/engine.py",
    "stream/engine/expiry.py",
    "stream/engine/figures.py",
    "stream/engine/labels.py",
    "stream/engine/lookup.py",
    "stream/engine/timeline.py",
    "stream/engine/validation.py",
    "stream/app/processing.py",
)


def compiled_path(source: Path) -> Path | None:
    """The C extension built from ``source``, if there is one."""
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = source.with_name(source.stem + suffix)
        if candidate.exists():
            return candidate
    return None


def stale_modules(root: Path = PACKAGE_ROOT) -> list[str]:
    """Compiled modules older than their source: they would run code that is gone."""
    stale = []
    for module in COMPILED:
        source = root / module
        extension = compiled_path(source)
        if extension is not None and extension.stat().st_mtime < source.stat().st_mtime:
            stale.append(module)
    return stale


def is_compiled() -> bool:
    """Whether the engine runs as C (for ``rcr`` start-up logs and the benchmarks)."""
    from stream.engine import engine

    return not engine.__file__ or not engine.__file__.endswith(".py")


def build(root: Path = PACKAGE_ROOT) -> None:
    """Compile ``COMPILED`` in place (run from ``root``, the directory holding ``stream``).

    The group name puts mypyc's shared runtime inside the package, where an editable
    install finds it, instead of at the top level. Intermediate files go to ``build/``.
    """
    from mypyc.build import mypycify
    from setuptools import setup

    # Whatever happens below, no extension older than its source stays behind: a failed
    # build leaves the engine as plain Python.
    for path in (*COMPILED, "stream/engine_native__mypyc.py"):
        extension = compiled_path(root / path)
        if extension is not None:
            extension.unlink()
    setup(
        name="rcr-stream-native",
        ext_modules=mypycify(list(COMPILED), group_name="stream.engine_native"),
        script_args=["build_ext", "--inplace", "--build-temp", "build/native"],
    )
    # An unchanged extension is copied with its old time: mark every one as fresh.
    for module in COMPILED:
        extension = compiled_path(root / module)
        if extension is not None:
            extension.touch()


if __name__ == "__main__":  # run as a script: importing ``stream`` checks staleness
    os.chdir(PACKAGE_ROOT)
    build()
