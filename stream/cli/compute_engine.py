"""``rcr compute``'s engine path: every line through ``decode_contact`` and the live
exclusions, contacts grouped into timelines (chains counted once), figures by
``CustomerTimeline.tally``.

The fast path (``stream.engine.bulk``) gives the same figures for inputs without contact
chains, abandon statuses and anonymous customers; when it notices one of them
(``BulkBatch.needs_engine``) the input is computed here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from stream.engine import ContactEvent, PeriodFigures, Rejection, decode_contact
from stream.engine.batch import collect_timelines, figures_per_period
from stream.engine.exclusions import ExcludedContacts
from stream.engine.periods import Calendar, PeriodKind
from stream.engine.validation import DEFAULT_MAX_RECORD_BYTES

RejectionSink = Callable[[Path, int, Rejection], None]


def engine_figures(
    paths: list[Path],
    excluded: ExcludedContacts,
    calendar: Calendar,
    kind: PeriodKind,
    repeat_interval_ms: int,
    on_rejection: RejectionSink,
) -> list[PeriodFigures]:
    """Per-period figures of the counted contacts; ``excluded`` tallies the others."""
    timelines, _ = collect_timelines(excluded.admit(_events(paths, on_rejection)))
    return figures_per_period(timelines.values(), calendar, kind, repeat_interval_ms)


def _events(paths: list[Path], on_rejection: RejectionSink) -> Iterator[ContactEvent]:
    for path in paths:
        with path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                decoded = decode_contact(line, DEFAULT_MAX_RECORD_BYTES)
                if isinstance(decoded, Rejection):
                    on_rejection(path, number, decoded)
                else:
                    yield decoded
