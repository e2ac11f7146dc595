"""Per-partition figures shared between workers: the cluster-wide truth on every worker.

Each worker publishes the figures of the partitions it owns to a compacted topic keyed by
partition, and follows that topic in full. Summing the latest value of every partition
gives cluster figures without double counting: when a partition moves, its new owner
overwrites the same key.
"""

from __future__ import annotations

import orjson

from stream.app.partitions import WindowFigures
from stream.engine import Figures


def encode_partition_figures(figures: WindowFigures) -> bytes:
    return orjson.dumps(
        {
            window: [
                [channel, reason, f.contacts, f.customers, f.repeat_customers, f.repeat_contacts]
                for (channel, reason), f in sorted(by_label.items())
            ]
            for window, by_label in figures.items()
        }
    )


def decode_partition_figures(
    key: bytes | None, value: bytes | None
) -> tuple[str, WindowFigures] | None:
    if key is None or value is None:
        return None
    try:
        document = orjson.loads(value)
        figures = {
            window: {(row[0], row[1]): Figures(*row[2:6]) for row in rows}
            for window, rows in document.items()
        }
    except (orjson.JSONDecodeError, TypeError, IndexError, AttributeError):
        return None
    return key.decode(errors="replace"), figures
