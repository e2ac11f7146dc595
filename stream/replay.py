"""Backfill historical exports into the contacts topic: JSON Lines or CSV, in event-time order.

A row becomes an event in three steps, each a pure function tested on its own:

1. ``--where`` filters on the source row (``inbound=True``); filtered rows are counted, not
   rejected: they were never contacts.
2. ``--map`` renames source columns to contract fields, ``--set`` adds constant fields, and
   ``--time-format`` parses the timestamp (naive times are UTC); the event is written in the
   contract's schema with an RFC 3339 timestamp. **Only contract fields leave**: free text and
   every other column of an export stay on this machine.
3. The worker's own validator (``stream.engine.decode_contact``) judges the event, so a row is
   rejected here for exactly the reasons the worker would reject it (lateness aside), with
   its file and row number in the summary.

Accepted events are sorted by ``(timestamp, contact_id)`` (the contract's order within a
customer), sent keyed by ``customer_id``, optionally paced (``--speed 60x``).
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, NamedTuple, Protocol

import orjson

from stream.engine import Rejection, decode_contact
from stream.simulate.generator import format_timestamp_ms

CONTRACT_FIELDS = (
    "contact_id",
    "customer_id",
    "timestamp",
    "channel",
    "reason",
    "direction",
    # Optional fields the worker reads: the default extra dimension, contact chains, and
    # what marks an abandoned contact (docs/METRICS.md).
    "queue",
    "chain_id",
    "status",
    "wait_time",
)
REQUIRED_FIELDS = ("contact_id", "customer_id", "timestamp")
# A required column whose value may be blank: a contact with no known customer is valid
# (the worker counts it as anonymous), so the row is sent, not rejected.
BLANK_ALLOWED = ("customer_id",)
# Row numbers kept per rejection reason for the summary; the counts stay exact.
EXAMPLES_PER_REASON = 10
FORMATS = ("auto", "csv", "jsonl")


class ReplayError(ValueError):
    """The command line cannot work with these files (a missing column, a bad --map)."""


class RowError(ValueError):
    """One row cannot become an event; ``reason`` uses the contract's rejection names."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


# -- command-line pieces ----------------------------------------------------------------------


def parse_pairs(texts: Iterable[str], what: str) -> dict[str, str]:
    """``["a=b,c=d", "e=f"]`` -> ``{"a": "b", "c": "d", "e": "f"}`` (later wins)."""
    pairs: dict[str, str] = {}
    for text in texts:
        for part in text.split(","):
            name, sep, value = part.partition("=")
            if not sep or not name.strip():
                raise ReplayError(f"{what}: expected NAME=VALUE, got {part!r}")
            pairs[name.strip()] = value.strip()
    return pairs


def parse_mapping(texts: Iterable[str]) -> dict[str, str]:
    """``--map customer_id=author_id``: contract field <- source column."""
    mapping = parse_pairs(texts, "--map")
    for target, source in mapping.items():
        if target not in CONTRACT_FIELDS:
            hint = f" (did you mean {source}={target}?)" if source in CONTRACT_FIELDS else ""
            fields = ", ".join(CONTRACT_FIELDS)
            raise ReplayError(f"--map {target}={source}: {target!r} is not one of {fields}{hint}")
        if not source:
            raise ReplayError(f"--map {target}=: the source column is empty")
    return mapping


def parse_constants(texts: Iterable[str]) -> dict[str, str]:
    """``--set channel=social``: a constant contract field on every event."""
    constants = parse_pairs(texts, "--set")
    for name in constants:
        if name not in CONTRACT_FIELDS or name in REQUIRED_FIELDS:
            allowed = ", ".join(f for f in CONTRACT_FIELDS if f not in REQUIRED_FIELDS)
            raise ReplayError(f"--set {name}: only {allowed} can be constant")
    return constants


@dataclass(frozen=True)
class Condition:
    """``column=value`` (or ``column!=value``), compared as text; several are all required."""

    column: str
    value: str
    negate: bool = False

    def matches(self, row: Mapping[str, Any]) -> bool:
        actual = row.get(self.column)
        equal = actual is not None and _as_text(actual) == self.value
        return equal != self.negate


def _as_text(value: Any) -> str:
    """How a cell compares: CSV text as is, JSON true/false as ``True``/``False`` like CSV."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def parse_conditions(texts: Iterable[str]) -> tuple[Condition, ...]:
    """``--where inbound=True --where channel!=email``."""
    conditions = []
    for text in texts:
        negate = "!=" in text
        column, _, value = text.partition("!=" if negate else "=")
        if not column.strip() or ("=" not in text):
            raise ReplayError(f"--where: expected COLUMN=VALUE or COLUMN!=VALUE, got {text!r}")
        conditions.append(Condition(column.strip(), value.strip(), negate))
    return tuple(conditions)


def parse_speed(text: str | None) -> float | None:
    """``60x`` -> 60.0 (one minute of event time per second); None or ``max`` -> unpaced."""
    if text is None or text.strip().lower() in {"max", "inf", ""}:
        return None
    try:
        speed = float(text.strip().lower().removesuffix("x"))
    except ValueError:
        raise ReplayError(f"--speed {text!r}: expected e.g. 60x, 1x or max") from None
    if not (speed > 0 and math.isfinite(speed)):
        raise ReplayError(f"--speed {text!r}: must be a positive number")
    return speed


# -- one row to one event ----------------------------------------------------------------------


@dataclass(frozen=True)
class RowSpec:
    """How source rows become events: filters, column mapping, constants, time format."""

    mapping: Mapping[str, str] = field(default_factory=dict)
    where: tuple[Condition, ...] = ()
    constants: Mapping[str, str] = field(default_factory=dict)
    time_format: str | None = None

    def source(self, target: str) -> str:
        """The source column of a contract field (itself unless mapped)."""
        return self.mapping.get(target, target)

    def check_columns(self, columns: Iterable[str], name: str) -> None:
        """Fail before reading a CSV whose header lacks a column the command line names."""
        present = set(columns)
        wanted = [self.mapping[f] for f in self.mapping] + [c.column for c in self.where]
        wanted += [f for f in REQUIRED_FIELDS if f not in self.mapping]
        missing = [column for column in dict.fromkeys(wanted) if column not in present]
        if missing:
            shown = ", ".join(sorted(c for c in present if c))
            hint = ""
            if any(f in missing for f in REQUIRED_FIELDS):
                hint = "; map them with e.g. --map customer_id=COLUMN"
            raise ReplayError(
                f"{name}: no column {', '.join(map(repr, missing))}; columns: {shown}{hint}"
            )


def parse_time_ms(value: Any, time_format: str | None) -> int:
    """A cell to epoch ms: strptime with ``time_format``, else RFC 3339 or epoch s / ms.

    Naive times are taken as UTC, the only assumption an export without offsets allows.
    """
    if time_format is not None and isinstance(value, str):
        try:
            moment = datetime.strptime(value.strip(), time_format)
        except ValueError:
            detail = f"{value[:40]!r} does not match {time_format!r}"
            raise RowError("bad_timestamp", detail) from None
        return _moment_ms(moment)
    if isinstance(value, bool):
        raise RowError("bad_type", "timestamp is a bool")
    if isinstance(value, int | float):
        return _number_ms(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return _number_ms(float(text))
        except ValueError:
            pass
        try:
            return _moment_ms(datetime.fromisoformat(text))
        except ValueError:
            raise RowError("bad_timestamp", f"not RFC 3339 or epoch: {text[:40]!r}") from None
    raise RowError("bad_type", f"timestamp is a {type(value).__name__}")


def _moment_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _number_ms(number: float) -> int:
    """Epoch seconds or milliseconds, told apart like the worker does (>= 1e11 is ms)."""
    if not math.isfinite(number):
        raise RowError("bad_timestamp", f"timestamp {number!r}")
    return int(number) if abs(number) >= 1e11 else int(number * 1000)


def _identifier(value: Any) -> Any:
    """Numeric ids (common in exports) become strings; anything else is left to validation."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value.strip() if isinstance(value, str) else value


def convert_row(row: Mapping[str, Any], spec: RowSpec) -> dict[str, Any] | None:
    """One source row to a contract event; None when ``--where`` filters it out.

    Raises :class:`RowError` when a required field is missing or the timestamp does not
    parse. Only contract fields are copied: other columns (free text) never leave.
    """
    if not all(condition.matches(row) for condition in spec.where):
        return None
    event: dict[str, Any] = {}
    for target in CONTRACT_FIELDS:
        value = row.get(spec.source(target))
        if value is None or (isinstance(value, str) and not value.strip()):
            if target in BLANK_ALLOWED and spec.source(target) in row:
                value = ""
            elif target in REQUIRED_FIELDS:
                raise RowError("missing_field", f"{target} (column {spec.source(target)!r})")
            else:
                continue
        event[target] = value
    event.update(spec.constants)
    event["contact_id"] = _identifier(event["contact_id"])
    event["customer_id"] = _identifier(event["customer_id"])
    event["timestamp"] = format_timestamp_ms(parse_time_ms(event["timestamp"], spec.time_format))
    return event


# -- files to records --------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Record:
    """An accepted event, sortable into send order: event time, then contact id."""

    timestamp_ms: int
    contact_id: str
    seq: int
    key: str = field(compare=False)
    event: dict[str, Any] = field(compare=False)

    def payload(self, shift_ms: int = 0) -> bytes:
        """The record value; ``shift_ms`` moves the event time (``--shift-to-now``)."""
        if not shift_ms:
            return orjson.dumps(self.event)
        shifted = dict(self.event, timestamp=format_timestamp_ms(self.timestamp_ms + shift_ms))
        return orjson.dumps(shifted)


class RowRef(NamedTuple):
    """Where a row came from: file name, ``row`` (CSV record) or ``line`` (JSONL), number."""

    file: str
    unit: str
    number: int

    def __str__(self) -> str:
        return f"{self.file}:{self.unit} {self.number}"


@dataclass
class Rejections:
    """Rejected rows: exact counts per reason, and the first few row numbers of each."""

    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[RowRef]] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)

    def add(self, reason: str, where: RowRef, detail: str) -> None:
        self.counts[reason] += 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < EXAMPLES_PER_REASON:
            shown.append(where)
            self.details.setdefault(reason, detail)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def rows(self, reason: str) -> str:
        """``twcs.csv rows 1, 2, 7, ...``: the first row numbers of a reason, per file."""
        per_file: dict[tuple[str, str], list[str]] = {}
        for ref in self.examples.get(reason, []):
            per_file.setdefault((ref.file, ref.unit), []).append(str(ref.number))
        text = "; ".join(
            f"{f} {unit}{'s' if len(n) > 1 else ''} {', '.join(n)}"
            for (f, unit), n in per_file.items()
        )
        return text + (", ..." if self.counts[reason] > len(self.examples.get(reason, [])) else "")


@dataclass
class Loaded:
    """Everything read: accepted records in send order, and what happened to the rest."""

    records: list[Record] = field(default_factory=list)
    rows: int = 0
    filtered: int = 0
    rejections: Rejections = field(default_factory=Rejections)

    @property
    def customers(self) -> int:
        return len({record.key for record in self.records})


def detect_format(path: Path, file_format: str = "auto") -> str:
    """``csv`` or ``jsonl`` from the name (``.csv``, ``.tsv``, ``.jsonl``, ``.ndjson``, ``.gz``)."""
    if file_format != "auto":
        return file_format
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    if suffixes and suffixes[-1] in {".csv", ".tsv"}:
        return "csv"
    if suffixes and suffixes[-1] in {".jsonl", ".ndjson", ".json"}:
        return "jsonl"
    raise ReplayError(f"{path}: cannot tell CSV from JSON Lines by its name; use --format")


def _open_text(path: Path) -> IO[str]:
    """Lines split on LF only: a bare CR is data (TWCS tweets have them), not a row break."""
    if path.suffix.lower() == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="\n")
    return path.open(encoding="utf-8-sig", newline="\n")


def _without_bare_cr(lines: Iterable[str]) -> Iterator[str]:
    """CSV lines with bare CRs read as spaces, CRLF kept: Python's csv ends a row at any CR."""
    for line in lines:
        if "\r" not in line:
            yield line
        elif line.endswith("\r\n"):
            yield line[:-2].replace("\r", " ") + "\r\n"
        else:
            yield line.replace("\r", " ")


def read_rows(path: Path, spec: RowSpec, file_format: str = "auto") -> Iterator[tuple[RowRef, Any]]:
    """``(where, row)`` pairs; a row is a dict, or a RowError when it is not even that."""
    kind = detect_format(path, file_format)
    with _open_text(path) as handle:
        if kind == "csv":
            yield from _csv_rows(handle, path, spec)
        else:
            yield from _jsonl_rows(handle, path)


def _csv_rows(handle: IO[str], path: Path, spec: RowSpec) -> Iterator[tuple[RowRef, Any]]:
    """CSV rows as dicts; row N is the N-th data record (quoted newlines do not count)."""
    delimiter = "\t" if ".tsv" in [s.lower() for s in path.suffixes] else ","
    reader = csv.DictReader(_without_bare_cr(handle), delimiter=delimiter)
    spec.check_columns(reader.fieldnames or [], str(path))
    for number, row in enumerate(reader, start=1):
        if None in row:
            row.pop(None)
        yield RowRef(path.name, "row", number), row


def _jsonl_rows(handle: IO[str], path: Path) -> Iterator[tuple[RowRef, Any]]:
    """JSON Lines objects; blank lines are skipped, line numbers are the file's."""
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        where = RowRef(path.name, "line", number)
        try:
            document = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield where, RowError("invalid_json", str(exc).splitlines()[0])
            continue
        if not isinstance(document, dict):
            yield where, RowError("invalid_json", "not a JSON object")
            continue
        yield where, document


def load(
    paths: Iterable[Path],
    spec: RowSpec,
    file_format: str = "auto",
    on_row: Callable[[], None] | None = None,
) -> Loaded:
    """Read, filter, convert and validate every row; records come back in send order."""
    loaded = Loaded()
    for path in paths:
        for where, row in read_rows(Path(path), spec, file_format):
            loaded.rows += 1
            if on_row is not None:
                on_row()
            _take(loaded, where, row, spec)
    loaded.records.sort()
    return loaded


def _take(loaded: Loaded, where: RowRef, row: Any, spec: RowSpec) -> None:
    """Add one row to ``loaded`` as a record, a filtered row or a rejection."""
    try:
        if isinstance(row, RowError):
            raise row
        event = convert_row(row, spec)
    except RowError as error:
        loaded.rejections.add(error.reason, where, error.detail)
        return
    if event is None:
        loaded.filtered += 1
        return
    verdict = decode_contact(orjson.dumps(event))
    if isinstance(verdict, Rejection):
        loaded.rejections.add(str(verdict.reason), where, verdict.detail)
        return
    # The validator strips ids; the key and the sent event must agree with what it accepted.
    event["contact_id"], event["customer_id"] = verdict.contact_id, verdict.customer_id
    record = Record(
        verdict.timestamp_ms, verdict.contact_id, loaded.rows, verdict.customer_id, event
    )
    loaded.records.append(record)


# -- sending -----------------------------------------------------------------------------------


class Pacer:
    """Event time -> how long to wait before sending, at ``speed`` x real time.

    A gap in the data longer than ``max_pause`` of wall time is cut to ``max_pause`` (an export
    with a straggler from years ago must not sleep for years); later events keep their spacing.
    """

    def __init__(self, speed: float | None, max_pause_s: float | None = None) -> None:
        self.speed = speed
        self.max_pause_s = max_pause_s
        self._origin: tuple[float, float] | None = None
        self._skipped = 0.0

    def delay(self, event_s: float, now: float) -> float:
        """Seconds to wait (0 when due or unpaced) before sending an event at ``event_s``."""
        if self.speed is None:
            return 0.0
        if self._origin is None:
            self._origin = (event_s, now)
        origin_event, origin_now = self._origin
        wait = origin_now + (event_s - origin_event) / self.speed - self._skipped - now
        if self.max_pause_s is not None and wait > self.max_pause_s:
            self._skipped += wait - self.max_pause_s
            wait = self.max_pause_s
        return max(0.0, wait)


class Sends(Protocol):
    """What :func:`send_records` needs from a producer (``KeyedProducer`` has it)."""

    async def send(self, key: str, value: bytes) -> None: ...


async def send_records(
    records: Iterable[Record],
    producer: Sends,
    *,
    pacer: Pacer | None = None,
    shift_ms: int = 0,
    stop: asyncio.Event | None = None,
    on_sent: Callable[[Record], None] | None = None,
) -> int:
    """Send records in order, keyed by customer, paced by ``pacer``; returns how many."""
    loop = asyncio.get_running_loop()
    sent = 0
    for record in records:
        if stop is not None and stop.is_set():
            break
        wait = pacer.delay(record.timestamp_ms / 1000, loop.time()) if pacer else 0.0
        if wait > 0.002:
            await asyncio.sleep(wait)
        elif sent % 500 == 0:
            await asyncio.sleep(0)
        await producer.send(record.key, record.payload(shift_ms))
        sent += 1
        if on_sent is not None:
            on_sent(record)
    return sent


def shift_to_now_ms(records: list[Record], now: float | None = None) -> int:
    """The offset that moves the newest event to now (so live windows see the replay)."""
    if not records:
        return 0
    now_ms = int((time.time() if now is None else now) * 1000)
    return now_ms - records[-1].timestamp_ms
