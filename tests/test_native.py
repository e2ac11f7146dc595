"""The compiled engine modules: refused when older than their source."""

from __future__ import annotations

import importlib.machinery
import os
from pathlib import Path

import pytest

from stream.native import COMPILED, compiled_path, is_compiled, stale_modules

SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


def tree(tmp_path: Path) -> Path:
    for module in COMPILED:
        (tmp_path / module).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / module).write_text("# source\n")
    return tmp_path


def compile_(root: Path, module: str, age_s: float) -> Path:
    """A stand-in extension for ``module``, ``age_s`` seconds older than its source."""
    source = root / module
    extension = source.with_name(source.stem + SUFFIX)
    extension.write_bytes(b"")
    when = source.stat().st_mtime - age_s
    os.utime(extension, (when, when))
    return extension


def test_plain_python_has_nothing_stale(tmp_path: Path) -> None:
    root = tree(tmp_path)
    assert stale_modules(root) == []
    assert compiled_path(root / COMPILED[0]) is None


def test_an_extension_older_than_its_source_is_stale(tmp_path: Path) -> None:
    root = tree(tmp_path)
    fresh, edited = COMPILED[0], COMPILED[1]
    compile_(root, fresh, age_s=-5)  # built after the last edit
    compile_(root, edited, age_s=5)  # the source changed since
    assert stale_modules(root) == [edited]


@pytest.mark.skipif(not os.environ.get("CI"), reason="CI builds with a C compiler present")
def test_ci_runs_the_compiled_engine() -> None:
    # `make install` falls back to plain Python when compiling fails; CI must notice that.
    assert is_compiled()
