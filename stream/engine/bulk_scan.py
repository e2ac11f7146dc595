"""Many JSON Lines read at once in numpy, for the lines of the shape exporters write.

A *flat* line is one JSON object whose members are all strings, written without escapes,
control characters or non-ASCII bytes, with at most one space beside its punctuation:
``{"contact_id":"k1","customer_id":"c1","timestamp":"2026-10-24T15:52:49.597Z"}``. In
such a line every quote opens or closes a string, so the positions of the quotes alone
give its structure, and checking the few bytes between the strings proves it is valid
JSON. ``scan`` judges all the flat lines of a chunk with a few numpy operations per chunk;
it leaves every other line to the per-line readers of ``stream.engine.bulk``, and sends a
flat line whose fields ``decode_contact`` might word or read differently (a blank or padded
identifier, an odd timestamp, a repeated or a chain or status field) straight to it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from stream.engine.validation import MAX_FIELD_CHARS, MAX_TIMESTAMP_MS

Int64Array = npt.NDArray[np.int64]
UInt64Array = npt.NDArray[np.uint64]
BoolArray = npt.NDArray[np.bool_]
ByteArray = npt.NDArray[np.uint8]

# Zero bytes after a chunk, so that reads of a fixed size from any position in it stay inside.
_PADDING = bytes(96)
_NEWLINE, _CARRIAGE_RETURN, _SPACE, _QUOTE, _BACKSLASH = 0x0A, 0x0D, 0x20, 0x22, 0x5C
# Little-endian words of 8 bytes: MASKS[n] keeps the first n bytes of one.
MASKS = np.array([(1 << (8 * n)) - 1 for n in range(9)], np.uint64)
# Identifiers up to this many words are compared as words; longer ones through a table.
MAX_WORDS = 8

# The fields the figures need, then those only the engine path judges (chains, abandons).
FIELDS = ("contact_id", "customer_id", "timestamp", "channel", "reason", "direction")
ENGINE_ONLY_FIELDS = ("chain_id", "status", "wait_time")
_CONTACT_ID, _CUSTOMER_ID, _TIMESTAMP, _CHANNEL, _REASON, _DIRECTION = range(len(FIELDS))
_KNOWN = FIELDS + ENGINE_ONLY_FIELDS


def _key_numbers(text: bytes) -> tuple[int, int, int]:
    """A key up to 16 bytes as numbers: its length and its two words, zero-padded."""
    padded = text.ljust(16, b"\0")
    return len(text), int.from_bytes(padded[:8], "little"), int.from_bytes(padded[8:16], "little")


_KNOWN_KEYS = [_key_numbers(name.encode()) for name in _KNOWN]  # in _KNOWN's order
_INBOUND, _OUTBOUND = (_key_numbers(value)[1] for value in (b"inbound", b"outbound"))


class ChunkLines:
    """The bytes of whole lines as numpy sees them, and where each line starts and ends."""

    def __init__(self, chunk: bytes) -> None:
        self.chunk = chunk
        size = len(chunk)
        self.data: ByteArray = np.frombuffer(chunk + _PADDING, np.uint8)
        head = self.data[:size]
        lows = np.flatnonzero(head < 0x20)
        is_newline = head[lows] == _NEWLINE
        newlines = lows if is_newline.all() else lows[is_newline]
        self.ends_with_newline = chunk.endswith(b"\n")
        last_line_open = size and not self.ends_with_newline  # a file's last, unterminated
        self.ends: Int64Array = np.append(newlines, size) if last_line_open else newlines
        self.starts: Int64Array = np.zeros(len(self.ends), np.int64)
        self.starts[1:] = self.ends[:-1] + 1
        self.count = len(self.ends)
        # Where the text of each line ends: before a carriage return ending it (CRLF files).
        self.text_ends = self.ends
        # Lines only the per-line readers take: other control bytes, non-ASCII, escapes.
        self.special = np.zeros(self.count, np.bool_)
        self._mark(self._carriage_returns_kept(lows[~is_newline]))
        if not chunk.isascii():
            self._mark(np.flatnonzero(head >= 0x80))
        if b"\\" in chunk:
            self._mark(np.flatnonzero(head == _BACKSLASH))

    def _carriage_returns_kept(self, controls: Int64Array) -> Int64Array:
        """Control bytes but the carriage returns that end a line, which JSON reads as
        whitespace: those move the line's ``text_ends`` instead."""
        if not len(controls):
            return controls
        line = np.searchsorted(self.starts, controls, side="right") - 1
        ending = (self.data[controls] == _CARRIAGE_RETURN) & (controls + 1 == self.ends[line])
        if ending.any():
            self.text_ends = self.ends.copy()
            self.text_ends[line[ending]] -= 1
        kept: Int64Array = controls[~ending]
        return kept

    def _mark(self, positions: Int64Array) -> None:
        if len(positions):
            self.special[np.searchsorted(self.starts, positions, side="right") - 1] = True

    def sizes(self) -> Int64Array:
        """Bytes of each line, its newline not counted."""
        sizes: Int64Array = self.ends - self.starts
        return sizes

    def line(self, index: int) -> bytes:
        """One line as ``decode_contact`` gets it: with its newline, if it has one."""
        end = int(self.ends[index]) + (index < self.count - 1 or self.ends_with_newline)
        return self.chunk[int(self.starts[index]) : end]

    def without_newline(self, index: int) -> bytes:
        return self.chunk[int(self.starts[index]) : int(self.ends[index])]

    def text(self, at: int, length: int) -> bytes:
        return self.chunk[at : at + length]


def words_at(data: ByteArray, positions: Int64Array, count: int) -> UInt64Array:
    """The ``count`` little-endian 8-byte words from each position, zero-copy views of
    ``data`` gathered at once (a gather costs its memory reads: 8 bytes or 64, nearly
    alike). Shape: ``positions``' and ``count``."""
    items = np.ndarray((len(data) - 8 * count + 1,), np.dtype(f"V{8 * count}"), data, strides=(1,))
    found: UInt64Array = items[positions.ravel()].view(np.dtype("<u8"))
    return found.reshape(*positions.shape, count)


class LineContacts:
    """What ``scan`` made of each line of a chunk.

    ``contact``: a valid contact, with its timestamp, direction and identifiers (as spans of
    the chunk) below; ``slow``: for ``decode_contact`` to judge; neither: not flat, for the
    per-line readers.
    """

    def __init__(self, count: int) -> None:
        self.contact = np.zeros(count, np.bool_)
        self.slow = np.zeros(count, np.bool_)
        self.timestamps = np.zeros(count, np.int64)
        self.inbound = np.zeros(count, np.bool_)
        self.customer_at = np.zeros(count, np.int64)
        self.customer_length = np.zeros(count, np.int64)
        self.contact_at = np.zeros(count, np.int64)
        self.contact_length = np.zeros(count, np.int64)


def scan(lines: ChunkLines, candidates: BoolArray) -> LineContacts:
    """Judge the flat lines among ``candidates``; see the module's docstring."""
    result = LineContacts(lines.count)
    quotes = np.flatnonzero(lines.data[: len(lines.chunk)] == _QUOTE)
    first_quote = np.searchsorted(quotes, lines.starts)
    per_line = np.diff(np.append(first_quote, len(quotes)))
    # Lines without a string cannot be contacts: decode_contact words why (or skips blanks).
    result.slow = candidates & (per_line == 0)
    # A flat line has a key and a value per member: four quotes each.
    shaped = candidates & ~lines.special & (per_line > 0) & (per_line % 4 == 0)
    for quote_count in np.unique(per_line[shaped]).tolist():
        rows = np.flatnonzero(shaped & (per_line == quote_count))
        # One row per quote, one column per line: reductions run along whole rows.
        at = quotes[np.arange(quote_count)[:, None] + first_quote[rows]]
        _scan_members(lines, rows, at[0::2], at[1::2], result)
    return result


def _scan_members(
    lines: ChunkLines, rows: Int64Array, opens: Int64Array, closes: Int64Array, result: LineContacts
) -> None:
    """Lines ``rows``, all with the same number of strings (``opens``/``closes``: quotes,
    one row per string)."""
    flat = _punctuated(lines.data, lines.starts[rows], lines.text_ends[rows], opens, closes)
    if not flat.all():
        rows, opens, closes = rows[flat], opens[:, flat], closes[:, flat]
    if not len(rows):
        return
    fields = _Fields.of(lines.data, opens[0::2], closes[0::2])
    value_at = opens[1::2] + 1
    value_length = closes[1::2] - value_at
    slow = (
        fields.repeated | fields.engine_only | fields.missing(_CONTACT_ID, _CUSTOMER_ID, _TIMESTAMP)
    )

    def value(field: int) -> tuple[Int64Array, Int64Array]:
        """Each line's value of ``field``: position and length (0 if it has none)."""
        at, length, present = fields.pick(field, value_at, value_length)
        return at, np.where(present, length, 0)

    contact_at, contact_length = value(_CONTACT_ID)
    customer_at, customer_length = value(_CUSTOMER_ID)
    slow |= ~_plain_identifier(lines.data, contact_at, contact_length)
    slow |= ~_plain_identifier(lines.data, customer_at, customer_length)
    for label in (_CHANNEL, _REASON):
        slow |= value(label)[1] > MAX_FIELD_CHARS  # stripping and "all" change no figure
    direction_at, direction_length, has_direction = fields.pick(_DIRECTION, value_at, value_length)
    head = words_at(lines.data, direction_at, 1)[:, 0]
    outbound = has_direction & (direction_length == 8) & (head == _OUTBOUND)
    inbound = has_direction & (direction_length == 7) & ((head & MASKS[7]) == _INBOUND)
    slow |= has_direction & ~inbound & ~outbound  # decode_contact words the refusal
    timestamps, parsed = parse_rfc3339(lines.data, *value(_TIMESTAMP))
    slow |= ~parsed
    result.slow[rows[slow]] = True
    taken = ~slow
    rows = rows[taken]
    result.contact[rows] = True
    result.timestamps[rows] = timestamps[taken]
    result.inbound[rows] = ~outbound[taken]
    result.contact_at[rows] = contact_at[taken]
    result.contact_length[rows] = contact_length[taken]
    result.customer_at[rows] = customer_at[taken]
    result.customer_length[rows] = customer_length[taken]


def _punctuated(
    data: ByteArray, starts: Int64Array, ends: Int64Array, opens: Int64Array, closes: Int64Array
) -> BoolArray:
    """Whether the bytes around the strings make one JSON object of key: value members:
    ``{`` before the first, ``:`` after a key, ``,`` after a value but the last, ``}`` after
    it, each alone or beside a space (JSON allows more whitespace: such lines are not flat)."""
    between = np.array([*b":," * (len(opens) // 2)][:-1], np.uint8)[:, None]
    compact = (opens[0] == starts + 1) & (data[starts] == ord("{"))
    compact &= (closes[-1] + 2 == ends) & (data[closes[-1] + 1] == ord("}"))
    compact &= ((opens[1:] - closes[:-1] == 2) & (data[closes[:-1] + 1] == between)).all(axis=0)
    if compact.all():
        return compact
    loose = np.flatnonzero(~compact)
    before = np.concatenate([starts[None, loose] - 1, closes[:, loose]])  # byte before a gap
    after = np.concatenate([opens[:, loose], ends[None, loose]])  # the byte after it
    expected = np.concatenate([[ord("{")], between[:, 0], [ord("}")]]).astype(np.uint8)[:, None]
    gap = after - before - 1
    first, second, third = data[before + 1], data[before + 2], data[before + 3]
    space1, space2, space3 = first == _SPACE, second == _SPACE, third == _SPACE
    mark1, mark2 = first == expected, second == expected
    found = (gap == 1) & mark1
    found |= (gap == 2) & ((mark1 & space2) | (space1 & mark2))
    found |= (gap == 3) & space1 & mark2 & space3
    compact[loose] = found.all(axis=0)
    return compact


def _same_keys(data: ByteArray, key_opens: Int64Array, key_closes: Int64Array) -> Int64Array | None:
    """The usual case: every line has the first line's keys, in its order. Then the field
    each member holds (``_KNOWN`` index or -1), as one column; else None."""
    lengths = key_closes - key_opens - 1
    if not (lengths == lengths[:, :1]).all():
        return None
    key_lengths = lengths[:, :1]  # the same in every line, so one mask per member
    words = words_at(data, key_opens + 1, 2)
    first = words[..., 0] & MASKS[np.clip(key_lengths, 0, 8)]
    second = words[..., 1] & MASKS[np.clip(key_lengths - 8, 0, 8)]
    if not ((first == first[:, :1]).all() and (second == second[:, :1]).all()):
        return None
    keys = zip(key_lengths[:, 0].tolist(), first[:, 0].tolist(), second[:, 0].tolist(), strict=True)
    ids = [_KNOWN_KEYS.index(key) if key in _KNOWN_KEYS else -1 for key in keys]
    return np.array(ids, np.int64)[:, None]


def _key_ids(data: ByteArray, key_opens: Int64Array, key_closes: Int64Array) -> Int64Array:
    """The field each member of each line holds (``_KNOWN`` index or -1), comparing each
    key as numbers: exactly for keys up to 16 bytes, as all the known ones are."""
    lengths = key_closes - key_opens - 1
    words = words_at(data, key_opens + 1, 2)
    first = words[..., 0] & MASKS[np.clip(lengths, 0, 8)]
    second = words[..., 1] & MASKS[np.clip(lengths - 8, 0, 8)]
    ids = np.full(lengths.shape, -1, np.int64)
    for field, (key_length, key_first, key_second) in enumerate(_KNOWN_KEYS):
        ids[(lengths == key_length) & (first == key_first) & (second == key_second)] = field
    return ids


class _Fields:
    """Which member of each line holds each known field, found by comparing keys exactly."""

    def __init__(self, columns: Int64Array, repeated: BoolArray, lines: int) -> None:
        # (known fields, lines): the member holding each field, -1 if none. One column
        # for all lines when they all have the same keys in the same order (``uniform``).
        self.columns = columns
        self.uniform = columns.shape[1] == 1
        self.repeated = np.broadcast_to(repeated, (lines,))  # a known field given twice
        engine_only = (columns[len(FIELDS) :] >= 0).any(axis=0)  # a chain or status field
        self.engine_only = np.broadcast_to(engine_only, (lines,))

    @classmethod
    def of(cls, data: ByteArray, key_opens: Int64Array, key_closes: Int64Array) -> _Fields:
        """The fields of lines whose keys open and close at ``key_opens``/``key_closes``
        (one row per member)."""
        ids = _same_keys(data, key_opens, key_closes)
        if ids is None:
            ids = _key_ids(data, key_opens, key_closes)
        members = np.arange(len(ids))[:, None]
        columns = np.empty((len(_KNOWN), ids.shape[1]), np.int64)
        repeated = np.zeros(ids.shape[1], np.bool_)
        for field in range(len(_KNOWN)):
            present = ids == field
            count = present.sum(axis=0)
            repeated |= count > 1
            # The member holding it; repeated, any (the line goes to the slow path).
            member = np.where(count == 1, (present * members).sum(axis=0), 0)
            columns[field] = np.where(count > 0, member, -1)
        return cls(columns, repeated, key_opens.shape[1])

    def missing(self, *fields: int) -> BoolArray:
        missing: BoolArray = np.any(self.columns[list(fields)] < 0, axis=0)
        return missing

    def pick(
        self, field: int, at: Int64Array, length: Int64Array
    ) -> tuple[Int64Array, Int64Array, BoolArray]:
        """Row ``field``'s member of ``at`` and ``length`` (one row per member), per line."""
        column = self.columns[field]
        if self.uniform:
            member = max(int(column[0]), 0)
            return at[member], length[member], np.broadcast_to(column[0] >= 0, at.shape[1:])
        lines = np.arange(at.shape[1])
        member = np.maximum(column, 0)
        return at[member, lines], length[member, lines], column >= 0


def _plain_identifier(data: ByteArray, at: Int64Array, length: Int64Array) -> BoolArray:
    """Not blank, not too long, nothing to strip: ``decode_contact`` takes it as it is."""
    last = at + np.maximum(length, 1) - 1
    plain: BoolArray = (length >= 1) & (length <= MAX_FIELD_CHARS)
    plain &= (data[at] != _SPACE) & (data[last] != _SPACE)
    return plain


# -- timestamps -------------------------------------------------------------------------------

# "YYYY-MM-DDTHH:MM:SS", then optionally "." and 1 to 6 digits, then "Z" or "+HH:MM"/"-HH:MM".
SHORTEST, LONGEST = len("2017-10-01T10:00:00Z"), len("2017-10-01T10:00:00.123456+01:00")


def _layout(text: str) -> tuple[np.uint64, np.uint64, np.uint64]:
    """Masks of an 8-byte piece of a layout ("d": a digit, "?": anything, else itself):
    the digits' bytes, the fixed characters' bytes and their values."""
    digits = fixed = value = 0
    for position, char in enumerate(text):
        byte = 0xFF << (8 * position)
        if char == "d":
            digits |= byte
        elif char != "?":
            fixed |= byte
            value |= ord(char) << (8 * position)
    return np.uint64(digits), np.uint64(fixed), np.uint64(value)


_DATE, _TIME, _SECONDS = _layout("dddd-dd-"), _layout("ddTdd:dd"), _layout(":dd?????")
_MILLIS_ZULU = _layout(":dd.dddZ")  # the seconds of "2017-10-01T10:00:00.123Z"
_OFFSET = _layout("?dd:dd??")  # the last six characters, from the sign
_HIGH_NIBBLES, _THREES, _SIXES = (np.uint64(0x0101_0101_0101_0101 * n) for n in (0xF0, 0x30, 6))


def _matches(words: UInt64Array, layout: tuple[Any, Any, Any]) -> BoolArray:
    """Whether each word has the layout's characters, and ASCII digits where it says "d"
    (per byte: 0x30-0x3F, and still 0x30-0x3F plus 6, i.e. not past 0x39)."""
    digits, fixed, value = layout
    return _digits(words, digits) & ((words & fixed) == value)


def _digits(words: UInt64Array, mask: Any) -> BoolArray:
    threes = _THREES & mask
    high = _HIGH_NIBBLES & mask
    found: BoolArray = ((words & high) == threes) & (((words + (_SIXES & mask)) & high) == threes)
    return found


def _digit(words: UInt64Array, byte: int) -> Int64Array:
    """The digit at ``byte`` of each word (0 for a zero byte)."""
    digit: Int64Array = ((words >> np.uint64(8 * byte)) & np.uint64(0xF)).astype(np.int64)
    return digit


def _two_digits(words: UInt64Array, byte: int) -> Int64Array:
    """The number written by the two digits at ``byte`` and the next one."""
    return _digit(words, byte) * 10 + _digit(words, byte + 1)


def parse_rfc3339(
    data: ByteArray, at: Int64Array, lengths: Int64Array
) -> tuple[Int64Array, BoolArray]:
    """Milliseconds of the timestamps ``data[at:at + length]`` in the common RFC 3339
    layout, and which have it.

    Only layouts where ``datetime.fromisoformat`` and this arithmetic provably agree are
    taken; any other text is for the slow path to judge. Bytes past a timestamp may be
    read, never used.
    """
    words = words_at(data, at, 4)
    date, time, seconds = words[:, 0], words[:, 1], words[:, 2]
    if (lengths == len("2017-10-01T10:00:00.123Z")).all():  # the usual export, line after line
        ok = _matches(date, _DATE) & _matches(time, _TIME) & _matches(seconds, _MILLIS_ZULU)
        if ok.all():
            fraction_ms = _two_digits(seconds, 4) * 10 + _digit(seconds, 6)
            return _civil_ms(date, time, seconds, fraction_ms, np.zeros_like(fraction_ms))
    lengths = np.where(lengths <= LONGEST, lengths, 0)  # longer ones are not the layout
    ok = lengths >= SHORTEST
    ok &= _matches(date, _DATE) & _matches(time, _TIME) & _matches(seconds, _SECONDS)
    # The last 8 characters: "Z" in the last, or the offset ("+HH:MM") in the last 6.
    last = words_at(data, at + np.maximum(lengths, SHORTEST) - 8, 1)[:, 0]
    zulu = (last >> np.uint64(56)) == ord("Z")
    offset = last >> np.uint64(16)
    sign = (offset & np.uint64(0xFF)).astype(np.int64)
    ok &= zulu | (((sign == ord("+")) | (sign == ord("-"))) & _matches(offset, _OFFSET))
    # Between the seconds and the zone: nothing, or "." and 1 to 6 digits.
    fraction_digits = np.where(zulu, lengths - 1, lengths - 6) - 20
    has_fraction = ((seconds >> np.uint64(24)) & np.uint64(0xFF)) == ord(".")
    ok &= np.where(
        has_fraction, (fraction_digits >= 1) & (fraction_digits <= 6), fraction_digits == -1
    )
    fraction = (seconds >> np.uint64(32)) | (words[:, 3] << np.uint64(32))  # characters 20-27
    ok &= ~has_fraction | _digits(fraction, MASKS[np.clip(fraction_digits, 0, 6)])
    milli_digits = fraction & MASKS[np.where(has_fraction, np.clip(fraction_digits, 0, 3), 0)]
    fraction_ms = _two_digits(milli_digits, 0) * 10 + _digit(milli_digits, 2)
    offset_hours, offset_minutes = _two_digits(offset, 1), _two_digits(offset, 4)
    ok &= zulu | ((offset_hours <= 23) & (offset_minutes <= 59))
    offset_s = np.where(zulu, 0, offset_hours * 3600 + offset_minutes * 60)
    offset_s = np.where(sign == ord("-"), -offset_s, offset_s)
    millis, valid = _civil_ms(date, time, seconds, fraction_ms, offset_s)
    ok &= valid
    return np.where(ok, millis, 0), ok


def _civil_ms(
    date: UInt64Array,
    time: UInt64Array,
    seconds: UInt64Array,
    fraction_ms: Int64Array,
    offset_s: Int64Array,
) -> tuple[Int64Array, BoolArray]:
    """Milliseconds since the epoch of the date and time written in the three words of a
    timestamp, and whether it is a real date and time (and in range)."""
    year = _two_digits(date, 0) * 100 + _two_digits(date, 2)
    month, day = _two_digits(date, 5), _two_digits(time, 0)
    hour, minute, second = _two_digits(time, 3), _two_digits(time, 6), _two_digits(seconds, 1)
    ok = (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1)
    # A word that is not the layout could give any number: clipped for the look-up.
    year_month = np.clip(year, 0, 9999) * 12 + np.clip(month, 1, 12) - 1
    ok &= day <= _MONTH_DAYS[year_month]
    ok &= (hour <= 23) & (minute <= 59) & (second <= 59)
    days = _MONTH_STARTS[year_month] + day - 1
    seconds_since = days * 86_400 + hour * 3600 + minute * 60 + second
    millis = (seconds_since - offset_s) * 1000 + fraction_ms
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


# Per month of the years 0-9999 (index year * 12 + month - 1): its length in days, and the
# day its first falls on, counted from 1970-01-01. One look-up instead of the arithmetic.
_YEARS, _MONTHS = (column.ravel() for column in np.mgrid[0:10_000, 1:13])
_MONTH_DAYS = _days_in_month(_YEARS, _MONTHS)
_MONTH_STARTS = _days_from_civil(_YEARS, _MONTHS, np.ones_like(_YEARS))


# -- identifiers ------------------------------------------------------------------------------


def identifier_words(
    data: ByteArray, at: Int64Array, lengths: Int64Array, width: int
) -> UInt64Array:
    """The bytes ``data[at:at + length]`` of each row as ``width`` words, zero-padded."""
    found = words_at(data, at, width)
    found &= MASKS[np.clip(lengths[:, None] - 8 * np.arange(width), 0, 8)]
    return found
