"""Per-partition figures shared between workers: the cluster-wide truth on every worker.

Each worker publishes the figures of the partitions it owns to a compacted topic keyed by
partition, and follows that topic in full. Summing the latest value of every partition
gives cluster figures without double counting: when a partition moves, its new owner
overwrites the same key.
"""

from __future__ import annotations

import orjson

from stream.app.partitions import DefinitionFigures, WindowFigures
from stream.engine import Figures

# Figures per label, in ``Figures`` field order. Rows from older workers carry fewer
# numbers (no resolution figures): they read as zeros.
_FIGURE_COUNT = len(tuple(Figures()))


def encode_partition_figures(figures: DefinitionFigures) -> bytes:
    return orjson.dumps(
        {
            "definitions": {
                definition: _encode_windows(windows) for definition, windows in figures.items()
            }
        }
    )


def _encode_windows(figures: WindowFigures) -> dict[str, list[list[object]]]:
    return {
        window: [[channel, reason, *f] for (channel, reason), f in sorted(by_label.items())]
        for window, by_label in figures.items()
    }


def decode_partition_figures(
    key: bytes | None, value: bytes | None
) -> tuple[str, DefinitionFigures] | None:
    """None for anything unreadable, including a record of a worker too old to name the
    definitions: its partition's new owner republishes it within a second."""
    if key is None or value is None:
        return None
    try:
        document = orjson.loads(value)
        figures = {
            definition: {
                window: {(row[0], row[1]): _figures(row[2:]) for row in rows}
                for window, rows in windows.items()
            }
            for definition, windows in document["definitions"].items()
        }
    except (orjson.JSONDecodeError, TypeError, IndexError, AttributeError, KeyError):
        return None
    return key.decode(errors="replace"), figures


def _figures(numbers: list[int]) -> Figures:
    return Figures(*numbers[:_FIGURE_COUNT])
