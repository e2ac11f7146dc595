"""``rcr compute``'s fast path: many JSON Lines at once, the same answers as line by line.

The reference is ``decode_contact`` on every line, then ``collect_timelines`` and
``figures_per_period``. This module gets the same figures with the per-event work in C and
numpy: msgspec decodes a line into a typed struct, numpy parses the common RFC 3339 layout
and counts. Any line the fast decoder refuses, or that needs the slow path's judgement
(stripping, odd timestamps, numbers orjson would refuse, invalid UTF-8, oversized), is
handed to ``decode_contact`` itself, so rejections and their details are the slow path's.
``tests/test_compute_bulk.py`` checks the equivalence on random valid and invalid lines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import compress, repeat
from operator import attrgetter, ne
from typing import Annotated, Literal, NamedTuple

import msgspec
import numpy as np
import numpy.typing as npt
import orjson

from stream.engine.batch import PeriodFigures
from stream.engine.events import ContactEvent, Rejection
from stream.engine.figures import Figures
from stream.engine.periods import Calendar, Period, PeriodKind
from stream.engine.validation import MAX_FIELD_CHARS, MAX_TIMESTAMP_MS, decode_contact

Int64Array = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
# (line number, rejection) for every invalid line, in file order.
RejectionSink = Callable[[int, Rejection], None]

_Label = Annotated[str, msgspec.Meta(max_length=MAX_FIELD_CHARS)]
# Keys of fields only the engine path judges (chains, abandons): an input mentioning one
# anywhere is computed there (a false alarm, e.g. the word in a reason, only costs time).
ENGINE_ONLY_KEYS = (b'"chain_id"', b'"status"', b'"wait_time"')


class _Line(msgspec.Struct, gc=False):
    """The fields the figures need. Unknown fields are skipped, never refused."""

    contact_id: str
    customer_id: str
    timestamp: str  # numbers are rare: the slow path parses them
    channel: _Label | None = None
    reason: _Label | None = None
    direction: Literal["inbound", "outbound"] | None = None


_decode_line = msgspec.json.Decoder(_Line).decode
_BROKEN = _Line("", "", "", None, None, "outbound")  # a placeholder, always handed to the slow path
_contact_ids = attrgetter("contact_id")
_customer_ids = attrgetter("customer_id")
_timestamps = attrgetter("timestamp")
_directions = attrgetter("direction")

# msgspec skips unknown fields without the checks orjson applies to the whole document:
# a number that overflows a double and nesting deeper than orjson's 1024 levels. Lines that
# might hold either are confirmed with orjson first (false alarms only cost time).
# Without an exponent of 3 digits only a number of ~300 digits overflows, and 1024 levels
# of nesting take 2 kB: both only in a long line.
_LONG_LINE = 200


class BulkBatch:
    """Accepted inbound contacts of many lines, column by column, in file order.

    Feed whole lines with ``add_lines``; ``figures_per_period`` then gives what
    ``batch.figures_per_period(collect_timelines(events).values(), ...)`` gives for the
    events ``decode_contact`` accepts from the same lines.
    """

    def __init__(self, max_record_bytes: int, anonymous_ids: frozenset[str] = frozenset()) -> None:
        self.max_record_bytes = max_record_bytes
        # Customer ids (case-folded) meaning no known customer. This path neither excludes
        # anonymous contacts nor judges chains and abandons: it only notices them
        # (``needs_engine``), and the caller then computes with the engine path, which does.
        self.anonymous_ids = anonymous_ids
        self.needs_engine = False
        self._rows = 0  # accepted inbound contacts so far, duplicates included
        # A customer's code is the row of its first contact; a contact_id maps to its first row.
        self._customer_codes: dict[str, int] = {}
        self._first_row_of: dict[str, int] = {}
        self._customer_of_row: list[Int64Array] = []
        self._shared_ids: set[tuple[int, str]] = set()  # contact_ids of several customers
        self._customers: list[Int64Array] = []
        self._timestamps: list[Int64Array] = []

    def add_lines(self, chunk: bytes, first_line: int, on_rejection: RejectionSink) -> int:
        """Every line of ``chunk`` (whole lines; only a file's last may lack its newline).

        ``first_line`` is the number of the chunk's first line; returns how many lines the
        chunk held. Invalid lines go to ``on_rejection`` in order, blank lines are skipped.
        """
        if not self.needs_engine and any(key in chunk for key in ENGINE_ONLY_KEYS):
            self.needs_engine = True  # a key sits within one line, and lines are whole
        lines = chunk.split(b"\n")
        ends_with_newline = not lines[-1]
        if ends_with_newline:
            lines.pop()
        count = len(lines)
        if not count:
            return 0
        items, slow = _decode(lines)
        sizes = np.fromiter(map(len, lines), np.int64, count)
        slow |= self._too_large(sizes, ends_with_newline)
        if not _is_utf8(chunk):
            slow |= _invalid_utf8(lines)
        slow |= _orjson_would_refuse(chunk, lines, sizes)
        if _identifiers_plain(chunk, sizes):
            customers = list(map(_customer_ids, items))
            contact_ids = list(map(_contact_ids, items))
        else:
            customers = list(map(str.strip, map(_customer_ids, items)))
            contact_ids = list(map(str.strip, map(_contact_ids, items)))
            slow |= _bad_identifiers(customers) | _bad_identifiers(contact_ids)
        timestamps, bad_time = _timestamps_ms(list(map(_timestamps, items)))
        slow |= bad_time
        directions = map(_directions, items)
        inbound = np.fromiter(map(ne, directions, repeat("outbound")), np.bool_, count)
        for index in np.flatnonzero(slow).tolist():
            raw = lines[index] + b"\n" if index < count - 1 or ends_with_newline else lines[index]
            event = _slow_line(raw, first_line + index, self.max_record_bytes, on_rejection)
            if event is None:
                inbound[index] = False
                continue
            customers[index] = event.customer_id
            contact_ids[index] = event.contact_id
            timestamps[index] = event.timestamp_ms
            inbound[index] = event.inbound
        keep = inbound.tolist()
        self._timestamps.append(timestamps[inbound])
        self._add_contacts(list(compress(customers, keep)), list(compress(contact_ids, keep)))
        return count

    def _add_contacts(self, customers: list[str], contact_ids: list[str]) -> None:
        """Customer codes for the accepted inbound rows, and which of them are duplicates.

        One dict operation per row, in C; only a contact_id seen before needs Python.
        """
        count = len(customers)
        rows = range(self._rows, self._rows + count)
        self._rows += count
        codes = np.fromiter(map(self._customer_codes.setdefault, customers, rows), np.int64, count)
        new_customers = np.flatnonzero(codes == np.arange(rows.start, rows.stop)).tolist()
        self.notice(customers[index] for index in new_customers)
        self._customer_of_row.append(codes)
        first = np.fromiter(map(self._first_row_of.setdefault, contact_ids, rows), np.int64, count)
        seen_before = np.flatnonzero(first != np.arange(rows.start, rows.stop))
        if len(seen_before):
            self._customer_of_row = [np.concatenate(self._customer_of_row)]
            duplicate = np.zeros(count, np.bool_)
            for index in seen_before.tolist():
                customer, contact_id = int(codes[index]), contact_ids[index]
                duplicate[index] = self._is_duplicate(customer, contact_id, int(first[index]))
            codes = codes[~duplicate]
            self._timestamps[-1] = self._timestamps[-1][~duplicate]
        self._customers.append(codes)

    def notice(self, customers: Iterable[str]) -> None:
        """Look at customers seen for the first time: is any of them anonymous?"""
        anonymous = self.anonymous_ids
        if any(not customer or customer.casefold() in anonymous for customer in customers):
            self.needs_engine = True

    def _is_duplicate(self, customer: int, contact_id: str, first_row: int) -> bool:
        if self._customer_of_row[0][first_row] == customer:
            return True
        key = (customer, contact_id)
        if key in self._shared_ids:
            return True
        self._shared_ids.add(key)
        return False

    def _too_large(self, sizes: Int64Array, ends_with_newline: bool) -> BoolArray:
        """What ``decode_contact`` calls too large: the newline counts as a byte."""
        too_large: BoolArray = sizes >= self.max_record_bytes
        if not ends_with_newline:
            too_large[-1] = sizes[-1] > self.max_record_bytes
        return too_large

    def figures_per_period(
        self, calendar: Calendar, kind: PeriodKind, repeat_interval_ms: int
    ) -> list[PeriodFigures]:
        """One entry per period with at least one contact, oldest first."""
        return figures_of(*self.columns(), calendar, kind, repeat_interval_ms)

    def columns(self) -> tuple[Int64Array, Int64Array]:
        """Customer codes and timestamps of the deduplicated inbound contacts."""
        if not self._customers:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(self._customers), np.concatenate(self._timestamps)

    def summary(self) -> BatchSummary:
        """What another process needs to append this batch to its own (``merged_with``)."""
        count = len(self._customer_codes)
        first_rows = np.fromiter(self._customer_codes.values(), np.int64, count)
        renumber = np.zeros(max(self._rows, 1), np.int64)
        renumber[first_rows] = np.arange(count)
        codes, timestamps = self.columns()
        customers = list(self._customer_codes)
        return BatchSummary(
            customers, renumber[codes], timestamps, self.contact_hashes(), self.needs_engine
        )

    def contact_hashes(self) -> Int64Array:
        """``hash`` of every distinct contact_id (a forked process shares the hash seed)."""
        ids = self._first_row_of
        return np.fromiter(map(hash, ids), np.int64, len(ids))

    def merged_with(
        self, later: BatchSummary, hashes: Int64Array
    ) -> tuple[Int64Array, Int64Array] | None:
        """Customer codes and timestamps of this batch, then of one read from the input
        after it; ``hashes`` are this batch's ``contact_hashes``.

        None when the two may share a contact_id (equal hashes): only the first of a
        duplicate counts, which a summary cannot tell, so the caller feeds the later part
        to this batch instead. Equal hashes of distinct ids only cost that extra read.
        """
        if _share_a_hash(hashes, later.contact_hashes):
            return None
        self.needs_engine |= later.needs_engine
        self.notice(later.customers)
        known, distinct = self._customer_codes, later.customers
        codes = np.fromiter(map(known.get, distinct, repeat(-1)), np.int64, len(distinct))
        new = codes < 0
        codes[new] = self._rows + np.arange(int(new.sum()))  # past every row code of this batch
        customers, timestamps = self.columns()
        return (
            np.concatenate([customers, codes[later.customer_of_row]]),
            np.concatenate([timestamps, later.timestamps]),
        )


class BatchSummary(NamedTuple):
    """A batch's contacts: its distinct customers, each row's index among them, its times,
    and the hashes of its contact_ids (to notice a contact_id two batches share)."""

    customers: list[str]
    customer_of_row: Int64Array
    timestamps: Int64Array
    contact_hashes: Int64Array
    needs_engine: bool


def _share_a_hash(first: Int64Array, second: Int64Array) -> bool:
    """Whether any value is in both: bitmaps on three slices of the bits narrow both sides
    to a few candidates first, which is cheaper than sorting them all."""
    mask = (1 << _FILTER_BITS) - 1
    marks = np.zeros(1 << _FILTER_BITS, np.bool_)
    for shift in (0, _FILTER_BITS, 2 * _FILTER_BITS):
        if not len(first) or not len(second):
            return False
        marks[(second >> shift) & mask] = True
        first = first[marks[(first >> shift) & mask]]
        marks[:] = False
        marks[(first >> shift) & mask] = True
        second = second[marks[(second >> shift) & mask]]
        marks[:] = False
    return len(np.intersect1d(first, second)) > 0


def figures_of(
    customers: Int64Array,
    timestamps: Int64Array,
    calendar: Calendar,
    kind: PeriodKind,
    repeat_interval_ms: int,
) -> list[PeriodFigures]:
    """Per-period figures of deduplicated inbound contacts given as customer codes and times."""
    if not len(timestamps):
        return []
    periods, period_index = _periods(timestamps, calendar, kind)
    totals = _tally(customers, timestamps, period_index, len(periods), repeat_interval_ms)
    return [
        PeriodFigures(period, Figures(*(int(column[index]) for column in totals)))
        for index, period in enumerate(periods)
    ]


def _decode(lines: list[bytes]) -> tuple[list[_Line], BoolArray]:
    """msgspec on each line, in C; a refused line gets a placeholder and a slow mark."""
    items: list[_Line] = []
    slow = np.zeros(len(lines), np.bool_)
    remaining = iter(lines)
    while True:
        try:
            items.extend(map(_decode_line, remaining))  # keeps what it decoded if one fails
        except Exception:  # any refusal means: let decode_contact judge
            slow[len(items)] = True
            items.append(_BROKEN)
        else:
            return items, slow


def _is_utf8(chunk: bytes) -> bool:
    if chunk.isascii():
        return True
    try:
        chunk.decode()
    except UnicodeDecodeError:
        return False
    return True


def _invalid_utf8(lines: list[bytes]) -> BoolArray:
    def invalid(line: bytes) -> bool:
        try:
            line.decode()
        except UnicodeDecodeError:
            return True
        return False

    return np.fromiter(map(invalid, lines), np.bool_, len(lines))


def _orjson_would_refuse(chunk: bytes, lines: list[bytes], sizes: Int64Array) -> BoolArray:
    """Lines msgspec may take that orjson refuses (over 1024 levels deep needs 2 kB)."""
    slow = np.zeros(len(lines), np.bool_)
    suspects = set(np.flatnonzero(sizes >= _LONG_LINE).tolist())
    suspects.update(_big_exponent_lines(chunk))
    for index in sorted(suspects):
        try:
            orjson.loads(lines[index])
        except orjson.JSONDecodeError:
            slow[index] = True
    return slow


def _big_exponent_lines(chunk: bytes) -> list[int]:
    """Lines holding a digit, "e" or "E", an optional sign and three digits: a number that
    might overflow a double (strings that look so only cost an orjson check)."""
    data = np.frombuffer(chunk, np.uint8)
    size = len(data)
    at = np.flatnonzero((data | 0x20) == ord("e"))  # only "E" and "e" become "e"
    at = at[(at >= 1) & (at + 4 < size)]
    if not len(at):
        return []

    def digit(positions: Int64Array) -> BoolArray:
        found: BoolArray = (data[positions] - ord("0")) < 10  # uint8: below "0" wraps around
        return found

    first = at + 1 + ((data[at + 1] == ord("+")) | (data[at + 1] == ord("-")))
    first = np.minimum(first, size - 3)
    hit = digit(at - 1) & digit(first) & digit(first + 1) & digit(first + 2)
    if not hit.any():
        return []
    newlines = np.flatnonzero(data == ord("\n"))
    lines: list[int] = np.searchsorted(newlines, at[hit]).tolist()
    return lines


def _identifiers_plain(chunk: bytes, sizes: Int64Array) -> bool:
    """Whether no string in the chunk can need stripping, be blank or be too long, so the
    identifiers need no checks: ASCII without escapes (other whitespace than a space would
    be an escape or a control character JSON refuses), no space or nothing next to a quote,
    and lines shorter than the longest identifier allowed."""
    return (
        int(sizes.max()) <= MAX_FIELD_CHARS
        and chunk.isascii()
        and b"\\" not in chunk
        and b' "' not in chunk
        and b'" ' not in chunk
        and b'""' not in chunk
    )


def _bad_identifiers(identifiers: list[str]) -> BoolArray:
    """Blank or too long after stripping: the slow path words the rejection."""
    lengths = np.fromiter(map(len, identifiers), np.int64, len(identifiers))
    bad: BoolArray = (lengths == 0) | (lengths > MAX_FIELD_CHARS)
    return bad


def _slow_line(
    raw: bytes, number: int, max_record_bytes: int, on_rejection: RejectionSink
) -> ContactEvent | None:
    """The reference path for one line: blank lines skipped, the rest ``decode_contact``."""
    if not raw.strip():
        return None
    decoded = decode_contact(raw, max_record_bytes)
    if isinstance(decoded, Rejection):
        on_rejection(number, decoded)
        return None
    return decoded


# -- timestamps -------------------------------------------------------------------------------

# "YYYY-MM-DDTHH:MM:SS", then optionally "." and 1 to 6 digits, then "Z" or "+HH:MM"/"-HH:MM".
_SHORTEST, _LONGEST = len("2017-10-01T10:00:00Z"), len("2017-10-01T10:00:00.123456+01:00")
_DIGITS = (0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18)
_PUNCTUATION = ((4, "-"), (7, "-"), (10, "T"), (13, ":"), (16, ":"))


def _timestamps_ms(values: list[str]) -> tuple[Int64Array, BoolArray]:
    """Milliseconds for the common RFC 3339 layout, in numpy; the rest marked for the slow path.

    Only layouts where ``datetime.fromisoformat`` and this arithmetic provably agree are
    taken; any other string (and every number) is the slow path's to judge.
    """
    count = len(values)
    texts = values
    lengths = np.fromiter(map(len, texts), np.int64, count)
    if lengths.max() > _LONGEST:  # numpy would cut them short
        texts = [text if len(text) <= _LONGEST else "" for text in values]
        lengths = np.fromiter(map(len, texts), np.int64, count)
    millis, ok = _parse_rfc3339(np.array(texts, dtype=f"U{_LONGEST}"), lengths)
    return millis, ~ok


def _parse_rfc3339(
    texts: npt.NDArray[np.str_], lengths: Int64Array
) -> tuple[Int64Array, BoolArray]:
    count = len(texts)
    chars = texts.view(np.uint32).reshape(count, _LONGEST).astype(np.int32)
    digits = chars - ord("0")
    is_digit = (digits >= 0) & (digits <= 9)
    ok = lengths >= _SHORTEST
    for position in _DIGITS:
        ok &= is_digit[:, position]
    for position, char in _PUNCTUATION:
        ok &= chars[:, position] == ord(char)
    rows = np.arange(count)
    last = np.maximum(lengths - 1, 0)
    zulu = chars[rows, last] == ord("Z")
    offset_at = np.maximum(lengths - 6, 0)
    sign_char = chars[rows, offset_at]
    offset = ~zulu & ((sign_char == ord("+")) | (sign_char == ord("-")))
    offset &= chars[rows, np.maximum(lengths - 3, 0)] == ord(":")
    for back in (5, 4, 2, 1):
        offset &= is_digit[rows, np.maximum(lengths - back, 0)]
    ok &= zulu | offset
    fraction_end = np.where(zulu, lengths - 1, lengths - 6)  # where the fraction stops
    has_fraction = chars[:, 19] == ord(".")
    ok &= np.where(has_fraction, (fraction_end >= 21) & (fraction_end <= 26), fraction_end == 19)
    fraction_ms = np.zeros(count, np.int64)
    for position in range(20, 26):
        inside = has_fraction & (position < fraction_end)
        ok &= ~inside | is_digit[:, position]
        if position < 23:
            fraction_ms += np.where(inside, digits[:, position], 0) * 10 ** (22 - position)

    def number(*positions: int) -> Int64Array:
        value = np.zeros(count, np.int64)
        for position in positions:
            value = value * 10 + digits[:, position]
        return value

    year, month, day = number(0, 1, 2, 3), number(5, 6), number(8, 9)
    hour, minute, second = number(11, 12), number(14, 15), number(17, 18)
    offset_hours = digits[rows, offset_at + 1] * 10 + digits[rows, offset_at + 2]
    offset_minutes = digits[rows, offset_at + 4] * 10 + digits[rows, offset_at + 5]
    ok &= (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1)
    ok &= day <= _days_in_month(year, np.clip(month, 1, 12))
    ok &= (hour <= 23) & (minute <= 59) & (second <= 59)
    ok &= zulu | ((offset_hours <= 23) & (offset_minutes <= 59))
    offset_s = np.where(zulu, 0, (offset_hours * 3600 + offset_minutes * 60))
    offset_s = np.where(sign_char == ord("-"), -offset_s, offset_s)
    seconds = _days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
    millis = (seconds - offset_s) * 1000 + fraction_ms
    ok &= (millis >= 0) & (millis < MAX_TIMESTAMP_MS)
    return np.where(ok, millis, 0), ok


def _days_in_month(year: Int64Array, month: Int64Array) -> Int64Array:
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    days = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], np.int64)[month]
    return days + ((month == 2) & leap)


def _days_from_civil(year: Int64Array, month: Int64Array, day: Int64Array) -> Int64Array:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    year = year - (month <= 2)
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146_097 + day_of_era - 719_468


# Past this many periods between the oldest and newest contact, skip the empty ones early.
_MAX_WALKED_PERIODS = 4096

# Bits per slice of a contact_id hash when looking for one two batches share.
_FILTER_BITS = 22

# -- grouping and counting --------------------------------------------------------------------


def _periods(
    timestamps: Int64Array, calendar: Calendar, kind: PeriodKind
) -> tuple[list[Period], Int64Array]:
    """The periods holding a contact, oldest first, and each contact's index among them."""
    periods = _periods_between(int(timestamps.min()), int(timestamps.max()), calendar, kind)
    if periods is None:  # a span of many periods: only those holding a contact
        periods = _periods_holding(np.unique(timestamps), calendar, kind)
    starts = np.array([period.start_ms for period in periods], np.int64)
    index = np.searchsorted(starts, timestamps, side="right") - 1
    held = np.bincount(index, minlength=len(periods)) > 0
    if held.all():
        return periods, index
    renumber = np.cumsum(held) - 1
    return list(compress(periods, held.tolist())), renumber[index]


def _periods_between(
    first_ms: int, last_ms: int, calendar: Calendar, kind: PeriodKind
) -> list[Period] | None:
    """Every period from the one holding ``first_ms`` to the one holding ``last_ms``."""
    periods = [calendar.period_of(kind, first_ms)]
    while periods[-1].end_ms <= last_ms:
        if len(periods) == _MAX_WALKED_PERIODS:
            return None
        periods.append(calendar.next(periods[-1]))
    return periods


def _periods_holding(distinct: Int64Array, calendar: Calendar, kind: PeriodKind) -> list[Period]:
    periods: list[Period] = []
    at = 0
    while at < len(distinct):
        period = calendar.period_of(kind, int(distinct[at]))
        periods.append(period)
        at = int(np.searchsorted(distinct, period.end_ms, side="left"))
    return periods


def _tally(
    customers: Int64Array,
    timestamps: Int64Array,
    period_index: Int64Array,
    period_count: int,
    repeat_interval_ms: int,
) -> tuple[Int64Array, ...]:
    """contacts, customers, repeat customers, repeat contacts, resolved, unresolved and
    provisional contacts per period (``Figures`` order).

    Sorted by (customer, timestamp), a contact's predecessor is the row before it when both
    are the customer's, and its follow-up the row after. Ties in time need no contact_id
    order: repeats, resolution and periods depend only on the timestamps. Resolution is
    judged at the newest contact, as ``batch.figures_per_period`` does.
    """
    order = np.lexsort((timestamps, customers))
    customer, timestamp, period = customers[order], timestamps[order], period_index[order]
    same_customer = customer[1:] == customer[:-1]
    close = same_customer & (timestamp[1:] - timestamp[:-1] <= repeat_interval_ms)
    repeat = np.zeros(len(order), np.bool_)
    repeat[1:] = close
    followed = np.zeros(len(order), np.bool_)
    followed[:-1] = close
    provisional = int(timestamp.max()) - timestamp <= repeat_interval_ms
    starts_group = np.ones(len(order), np.bool_)  # one group: a customer in one period
    starts_group[1:] = ~same_customer | (period[1:] != period[:-1])
    group_starts = np.flatnonzero(starts_group)
    group_sizes = np.diff(np.append(group_starts, len(order)))
    group_period = period[group_starts]

    def per_period(indices: Iterable[int] | Int64Array) -> Int64Array:
        return np.bincount(np.asarray(indices, np.int64), minlength=period_count)

    return (
        per_period(period),
        per_period(group_period),
        per_period(group_period[group_sizes >= 2]),
        per_period(period[repeat]),
        per_period(period[~provisional & ~followed]),
        per_period(period[~provisional & followed]),
        per_period(period[provisional]),
    )
