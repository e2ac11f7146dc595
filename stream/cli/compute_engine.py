"""``rcr compute``'s engine path: every line through ``decode_contact`` and the live
exclusions, contacts grouped into timelines (chains counted once), figures by
``CustomerTimeline.tally``.

The fast path (``stream.engine.bulk``) gives the same figures for inputs without contact
chains, abandon statuses and anonymous customers; inputs with any of them come here.
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
# Keys whose presence anywhere in the input sends it down this path (a false alarm, e.g.
# the word in a reason, only costs time).
ENGINE_ONLY_KEYS = (b'"chain_id"', b'"status"', b'"wait_time"')
_SCAN_BYTES = 4 << 20


def needs_engine(paths: list[Path]) -> bool:
    """Whether any input mentions a field only this path judges (chains, abandons)."""
    longest = max(len(key) for key in ENGINE_ONLY_KEYS)
    for path in paths:
        with path.open("rb") as handle:
            tail = b""
            while block := handle.read(_SCAN_BYTES):
                if mentions_engine_only_field(tail + block):
                    return True
                tail = block[-longest:]
    return False


def mentions_engine_only_field(data: bytes) -> bool:
    return any(key in data for key in ENGINE_ONLY_KEYS)


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
