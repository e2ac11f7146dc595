"""``rcr compute``'s fast path: many JSON Lines at once, the same answers as line by line.

The reference is ``decode_contact`` on every line, then ``collect_timelines`` and
``figures_per_period``. This module gets the same figures with the per-line work in numpy:

1. ``bulk_scan.scan`` judges the *flat* lines (string members only, no escapes: what
   exporters write) a chunk at a time, from the positions of their quotes.
2. Other lines are decoded one by one by msgspec into a typed struct, in C.
3. Any line either of them refuses or doubts (stripping, odd timestamps, numbers orjson
   would refuse, invalid UTF-8, oversized, chain and status fields) is handed to
   ``decode_contact`` itself, so rejections, their details and line numbers are the slow
   path's.

Accepted contacts are kept as columns: customer and contact_id as exact numbers (the bytes
as words, see ``Identifiers``), and timestamps. ``figures_of`` then finds duplicates and
groups customers by sorting hashes of those numbers, checking every match exactly, and
counts in numpy. ``tests/test_compute_bulk.py`` checks the equivalence on random valid and
invalid lines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from itertools import compress, repeat
from operator import attrgetter, is_not, methodcaller, ne
from typing import Annotated, Any, Literal, NamedTuple

import msgspec
import numpy as np
import numpy.typing as npt
import orjson

from stream.engine.batch import PeriodFigures
from stream.engine.bulk_scan import (
    LONGEST,
    MAX_WORDS,
    BoolArray,
    ChunkLines,
    Int64Array,
    LineContacts,
    UInt64Array,
    identifier_words,
    parse_rfc3339,
    scan,
)
from stream.engine.events import ContactEvent, Rejection
from stream.engine.figures import Figures
from stream.engine.periods import Calendar, Period, PeriodKind
from stream.engine.validation import MAX_FIELD_CHARS, decode_contact

Int32Array = npt.NDArray[np.int32]
# (line number, rejection) for every invalid line, in file order.
RejectionSink = Callable[[int, Rejection], None]


class Identifiers(NamedTuple):
    """Byte strings as numbers, exactly: each one's length and its bytes as little-endian
    words, zero-padded. One longer than ``MAX_WORDS`` words has no words and a negative
    length instead, ``-1 - n`` for the n-th entry of its batch's table of long identifiers.
    ``hashes`` mixes both (equal identifiers, equal hashes) to sort by.
    """

    lengths: Int32Array
    words: UInt64Array  # (count, width)
    hashes: UInt64Array

    @classmethod
    def of(cls, lengths: Int64Array | Int32Array, words: UInt64Array) -> Identifiers:
        return cls(lengths.astype(np.int32), words, _mixed(lengths, words))

    @staticmethod
    def concatenate(parts: list[Identifiers]) -> Identifiers:
        width = max(part.words.shape[1] for part in parts)
        return Identifiers(
            np.concatenate([part.lengths for part in parts]),
            np.concatenate([_widened(part.words, width) for part in parts]),
            np.concatenate([part.hashes for part in parts]),
        )

    def equal(self, first: Int64Array, second: Int64Array) -> BoolArray:
        """Whether rows ``first[i]`` and ``second[i]`` hold the same identifier."""
        same: BoolArray = self.lengths[first] == self.lengths[second]
        same &= (self.words[first] == self.words[second]).all(axis=1)
        return same

    def same_as_previous(self, order: Int64Array) -> BoolArray:
        """Whether row ``order[i + 1]`` holds the same identifier as row ``order[i]``."""
        lengths, words = self.lengths[order], self.words[order]
        same: BoolArray = lengths[1:] == lengths[:-1]
        for column in words.T:
            same &= column[1:] == column[:-1]
        return same

    def key(self, row: int) -> tuple[int, bytes]:
        return int(self.lengths[row]), self.words[row].tobytes()


class Contacts(NamedTuple):
    """Accepted inbound contacts, in input order, duplicates included."""

    customers: Identifiers
    contact_ids: Identifiers
    timestamps: Int64Array

    @staticmethod
    def concatenate(parts: list[Contacts]) -> Contacts:
        return Contacts(
            Identifiers.concatenate([part.customers for part in parts]),
            Identifiers.concatenate([part.contact_ids for part in parts]),
            np.concatenate([part.timestamps for part in parts]),
        )


class BatchSummary(NamedTuple):
    """What a batch read in another process sends back to be appended (``merged_with``)."""

    contacts: Contacts
    long_identifiers: list[bytes]  # the batch's table, in order
    needs_engine: bool


_Label = Annotated[str, msgspec.Meta(max_length=MAX_FIELD_CHARS)]


class _Line(msgspec.Struct, gc=False):
    """A line the scan left, decoded by msgspec. Unknown fields are skipped, never refused."""

    contact_id: str
    customer_id: str
    timestamp: str  # numbers are rare: the slow path parses them
    channel: _Label | None = None
    reason: _Label | None = None
    direction: Literal["inbound", "outbound"] | None = None
    # Given (not null), decode_contact judges them and the engine path counts the input.
    chain_id: Any = None
    status: Any = None
    wait_time: Any = None


_decode_line = msgspec.json.Decoder(_Line).decode
_BROKEN = _Line("", "", "", None, None, "outbound")  # a placeholder, always handed to the slow path
_contact_ids = attrgetter("contact_id")
_customer_ids = attrgetter("customer_id")
_timestamps = attrgetter("timestamp")
_directions = attrgetter("direction")
_ENGINE_ONLY = tuple(map(attrgetter, ("chain_id", "status", "wait_time")))
_to_bytes = methodcaller("encode", "utf-8", "surrogatepass")

# msgspec skips unknown fields without the checks orjson applies to the whole document:
# a number that overflows a double and nesting deeper than orjson's 1024 levels. Lines that
# might hold either are confirmed with orjson first (false alarms only cost time).
# Without an exponent of 3 digits only a number of ~300 digits overflows, and 1024 levels
# of nesting take 2 kB: both only in a long line.
_LONG_LINE = 200


class _Decoded:
    """Contacts of a chunk read line by line (not by the scan): line, customer, contact_id."""

    def __init__(self) -> None:
        self.lines: list[int] = []
        self.customers: list[str] = []
        self.contact_ids: list[str] = []

    def extend(self, lines: Iterable[int], customers: Iterable[str], ids: Iterable[str]) -> None:
        self.lines.extend(lines)
        self.customers.extend(customers)
        self.contact_ids.extend(ids)


class BulkBatch:
    """Accepted inbound contacts of many lines, column by column, in file order.

    Feed whole lines with ``add_lines``; ``figures_of(batch.contacts(), ...)`` then gives what
    ``batch.figures_per_period(collect_timelines(events).values(), ...)`` gives for the
    events ``decode_contact`` accepts from the same lines.
    """

    def __init__(self, max_record_bytes: int, anonymous_ids: frozenset[str] = frozenset()) -> None:
        self.max_record_bytes = max_record_bytes
        # Customer ids (case-folded) meaning no known customer. This path neither excludes
        # anonymous contacts nor judges chains and abandons: it only notices them
        # (``needs_engine``), and the caller then computes with the engine path, which does.
        self.anonymous_ids = anonymous_ids
        self._anonymous_words = _short_ascii_words(anonymous_ids)
        self.needs_engine = False
        self._parts: list[Contacts] = []
        self._long_ids: dict[bytes, int] = {}

    def add_lines(self, chunk: bytes, first_line: int, on_rejection: RejectionSink) -> int:
        """Every line of ``chunk`` (whole lines; only a file's last may lack its newline).

        ``first_line`` is the number of the chunk's first line; returns how many lines the
        chunk held. Invalid lines go to ``on_rejection`` in order, blank lines are skipped.
        """
        lines = ChunkLines(chunk)
        if not lines.count:
            return 0
        too_large = self._too_large(lines)
        found = scan(lines, ~too_large)
        slow = found.slow | too_large
        decoded = _Decoded()
        left = np.flatnonzero(~found.contact & ~slow)
        if len(left):
            slow[left] = self._decode_each(lines, left, found, decoded)
        for index in np.flatnonzero(slow).tolist():
            judged = _slow_line(lines.line(index), self.max_record_bytes)
            if isinstance(judged, Rejection):
                on_rejection(first_line + index, judged)
            elif judged is not None:
                self._take_event(index, judged, found, decoded)
        self._keep(lines, found, decoded)
        return lines.count

    def _too_large(self, lines: ChunkLines) -> BoolArray:
        """What ``decode_contact`` calls too large: the newline counts as a byte."""
        sizes = lines.sizes()
        too_large: BoolArray = sizes >= self.max_record_bytes
        if not lines.ends_with_newline:
            too_large[-1] = sizes[-1] > self.max_record_bytes
        return too_large

    def _decode_each(
        self, lines: ChunkLines, indices: Int64Array, found: LineContacts, decoded: _Decoded
    ) -> BoolArray:
        """msgspec on each of the lines ``indices``; returns those for the slow path."""
        texts = list(map(lines.without_newline, indices.tolist()))
        count = len(texts)
        items, slow = _decode(texts)
        sizes = np.fromiter(map(len, texts), np.int64, count)
        joined = b"\n".join(texts)
        if not _is_utf8(joined):
            slow |= _invalid_utf8(texts)
        slow |= _orjson_would_refuse(joined, texts, sizes)
        for given in _ENGINE_ONLY:
            slow |= np.fromiter(map(is_not, map(given, items), repeat(None)), np.bool_, count)
        customers = list(map(str.strip, map(_customer_ids, items)))
        contact_ids = list(map(str.strip, map(_contact_ids, items)))
        slow |= _bad_identifiers(customers) | _bad_identifiers(contact_ids)
        timestamps, bad_time = _timestamps_ms(list(map(_timestamps, items)))
        slow |= bad_time
        inbound = np.fromiter(map(ne, map(_directions, items), repeat("outbound")), np.bool_, count)
        taken = ~slow
        rows = indices[taken]
        found.contact[rows] = True
        found.timestamps[rows] = timestamps[taken]
        found.inbound[rows] = inbound[taken]
        flags = taken.tolist()
        decoded.extend(rows.tolist(), compress(customers, flags), compress(contact_ids, flags))
        return slow

    def _take_event(
        self, index: int, event: ContactEvent, found: LineContacts, decoded: _Decoded
    ) -> None:
        found.contact[index] = True
        found.timestamps[index] = event.timestamp_ms
        found.inbound[index] = event.inbound
        decoded.extend([index], [event.customer_id], [event.contact_id])
        if event.chain_id is not None or event.status is not None or event.wait_ms is not None:
            self.needs_engine = True

    def _keep(self, lines: ChunkLines, found: LineContacts, decoded: _Decoded) -> None:
        """The chunk's inbound contacts as columns, in line order."""
        rows = np.flatnonzero(found.contact & found.inbound)
        if not len(rows):
            return
        inbound = found.inbound[decoded.lines].tolist()
        at = np.searchsorted(rows, np.array(list(compress(decoded.lines, inbound)), np.int64))
        texts = list(compress(decoded.customers, inbound))
        customers, long_customers = self._identifiers(
            lines,
            found.customer_at[rows],
            found.customer_length[rows],
            at,
            list(map(_to_bytes, texts)),
        )
        contact_ids, _ = self._identifiers(
            lines,
            found.contact_at[rows],
            found.contact_length[rows],
            at,
            list(map(_to_bytes, compress(decoded.contact_ids, inbound))),
        )
        texts += (value.decode("utf-8", "surrogatepass") for value in long_customers)
        self._notice_anonymous(customers, texts)
        self._parts.append(Contacts(customers, contact_ids, found.timestamps[rows]))

    def _identifiers(
        self,
        lines: ChunkLines,
        starts: Int64Array,
        lengths: Int64Array,
        decoded_at: Int64Array,
        decoded: list[bytes],
    ) -> tuple[Identifiers, list[bytes]]:
        """Identifiers of rows given as spans of the chunk, except rows ``decoded_at``,
        whose bytes are ``decoded``; and the long ones (numbered in the batch's table)."""
        lengths = lengths.copy()
        lengths[decoded_at] = np.fromiter(map(len, decoded), np.int64, len(decoded))
        short = lengths <= 8 * MAX_WORDS
        width = max(1, -(-int(lengths.max(where=short, initial=0)) // 8))
        spans = np.where(short, lengths, 0)
        spans[decoded_at] = 0
        words = identifier_words(lines.data, starts, spans, width)
        if decoded:
            fitting = (value if len(value) <= 8 * width else b"" for value in decoded)
            padded = b"".join(map(methodcaller("ljust", 8 * width, b"\0"), fitting))
            words[decoded_at] = np.frombuffer(padded, np.dtype("<u8")).reshape(-1, width)
        long_rows = np.flatnonzero(~short).tolist()
        if not long_rows:
            return Identifiers.of(lengths, words), []
        decoded_rows = dict(zip(decoded_at.tolist(), decoded, strict=True))
        long_values = []
        for row in long_rows:
            value = decoded_rows.get(row) or lines.text(int(starts[row]), int(lengths[row]))
            words[row] = 0
            lengths[row] = -1 - self._long_ids.setdefault(value, len(self._long_ids))
            long_values.append(value)
        return Identifiers.of(lengths, words), long_values

    def _notice_anonymous(self, customers: Identifiers, texts: Iterable[str]) -> None:
        """Is any customer anonymous? ``texts`` are the customers read line by line, compared
        as ``ExcludedContacts`` compares them; the others are ASCII (flat lines) or long:
        compared in numpy, lower-cased."""
        anonymous = self.anonymous_ids
        if any(not customer or customer.casefold() in anonymous for customer in texts):
            self.needs_engine = True
        lowered = _lowercase_ascii(customers.words)
        for length, words in self._anonymous_words:
            if len(words) <= lowered.shape[1]:
                same = (customers.lengths == length) & (lowered[:, : len(words)] == words).all(1)
                self.needs_engine |= bool(same.any())

    def contacts(self) -> Contacts:
        """Every accepted inbound contact so far, in input order."""
        if not self._parts:
            empty = Identifiers.of(np.zeros(0, np.int64), np.zeros((0, 1), np.uint64))
            return Contacts(empty, empty, np.zeros(0, np.int64))
        if len(self._parts) > 1:
            self._parts = [Contacts.concatenate(self._parts)]
        return self._parts[0]

    def summary(self) -> BatchSummary:
        return BatchSummary(self.contacts(), list(self._long_ids), self.needs_engine)

    def merged_with(self, later: BatchSummary) -> Contacts:
        """This batch's contacts, then those of one read from the input after it."""
        self.needs_engine |= later.needs_engine
        contacts = later.contacts
        if later.long_identifiers:
            table = self._long_ids
            renumbered = np.array(
                [table.setdefault(value, len(table)) for value in later.long_identifiers],
                np.int64,
            )
            contacts = Contacts(
                _renumbered(contacts.customers, renumbered),
                _renumbered(contacts.contact_ids, renumbered),
                contacts.timestamps,
            )
        self._parts.append(contacts)
        return self.contacts()


# -- identifiers as numbers -------------------------------------------------------------------

_MULTIPLIER = np.uint64(0x9E37_79B9_7F4A_7C15)  # 2**64 / golden ratio, odd


def _mixed(lengths: Int64Array | Int32Array, words: UInt64Array) -> UInt64Array:
    """A 64-bit hash of each identifier from its numbers (multiply, fold, per word).

    Only the words an identifier fills count: it hashes alike in batches of any width.
    """
    mixed = lengths.astype(np.uint64) * _MULTIPLIER
    for index, column in enumerate(words.T):
        mixed = np.where(lengths > 8 * index, _scrambled((mixed ^ column) * _MULTIPLIER), mixed)
    return _scrambled(mixed * _MULTIPLIER)


def _scrambled(values: UInt64Array) -> UInt64Array:
    """High bits folded into low ones, so that every bit of the input moves every bit."""
    scrambled: UInt64Array = values ^ (values >> np.uint64(31))
    return scrambled


def _widened(words: UInt64Array, width: int) -> UInt64Array:
    if words.shape[1] == width:
        return words
    wider = np.zeros((len(words), width), np.uint64)
    wider[:, : words.shape[1]] = words
    return wider


def _renumbered(identifiers: Identifiers, codes: Int64Array) -> Identifiers:
    """Long identifiers numbered in another table: ``codes[n]`` is entry n's number there."""
    lengths = identifiers.lengths
    long_ones = lengths < 0
    if not long_ones.any():
        return identifiers
    lengths = lengths.copy()
    lengths[long_ones] = -1 - codes[-1 - lengths[long_ones]]
    return Identifiers.of(lengths, identifiers.words)


def _short_ascii_words(texts: frozenset[str]) -> list[tuple[int, UInt64Array]]:
    """Texts that an ASCII identifier of at most ``MAX_WORDS`` words can equal, as words."""
    found = []
    for text in sorted(texts):
        raw = text.encode()
        if raw.isascii() and 0 < len(raw) <= 8 * MAX_WORDS:
            padded = raw.ljust(-(-len(raw) // 8) * 8, b"\0")
            found.append((len(raw), np.frombuffer(padded, np.dtype("<u8"))))
    return found


def _lowercase_ascii(words: UInt64Array) -> UInt64Array:
    """ASCII capitals to small letters in every byte of the words; other bytes unchanged.

    Per byte b below 0x80: b + 0x3F reaches 0x80 from "A" on, b + 0x25 from past "Z" on, so
    their top bits differ exactly for capitals; 0x20 (the case bit) is then added there.
    """
    seven = words & np.uint64(0x7F7F_7F7F_7F7F_7F7F)
    capitals = (seven + np.uint64(0x3F3F_3F3F_3F3F_3F3F)) ^ (
        seven + np.uint64(0x2525_2525_2525_2525)
    )
    capitals &= ~words & np.uint64(0x8080_8080_8080_8080)
    lowered: UInt64Array = words | (capitals >> np.uint64(2))
    return lowered


# -- lines the scan leaves: msgspec, then decode_contact ---------------------------------------


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


def _is_utf8(text: bytes) -> bool:
    if text.isascii():
        return True
    try:
        text.decode()
    except UnicodeDecodeError:
        return False
    return True


def _invalid_utf8(lines: list[bytes]) -> BoolArray:
    return ~np.fromiter(map(_is_utf8, lines), np.bool_, len(lines))


def _orjson_would_refuse(joined: bytes, lines: list[bytes], sizes: Int64Array) -> BoolArray:
    """Lines msgspec may take that orjson refuses (over 1024 levels deep needs 2 kB);
    ``joined`` is the lines joined by newlines."""
    slow = np.zeros(len(lines), np.bool_)
    suspects = set(np.flatnonzero(sizes >= _LONG_LINE).tolist())
    suspects.update(_big_exponent_lines(joined))
    for index in sorted(suspects):
        try:
            orjson.loads(lines[index])
        except orjson.JSONDecodeError:
            slow[index] = True
    return slow


def _big_exponent_lines(joined: bytes) -> list[int]:
    """Lines holding a digit, "e" or "E", an optional sign and three digits: a number that
    might overflow a double (strings that look so only cost an orjson check)."""
    data = np.frombuffer(joined, np.uint8)
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


def _bad_identifiers(identifiers: list[str]) -> BoolArray:
    """Blank or too long after stripping: the slow path words the rejection."""
    lengths = np.fromiter(map(len, identifiers), np.int64, len(identifiers))
    bad: BoolArray = (lengths == 0) | (lengths > MAX_FIELD_CHARS)
    return bad


def _timestamps_ms(values: list[str]) -> tuple[Int64Array, BoolArray]:
    """Milliseconds of timestamps in the common RFC 3339 layout; the rest (non-ASCII ones
    too) marked for the slow path (``bulk_scan.parse_rfc3339``)."""
    count = len(values)
    texts = [text if len(text) <= LONGEST and text.isascii() else "" for text in values]
    lengths = np.fromiter(map(len, texts), np.int64, count)
    padded = "".join(map(methodcaller("ljust", LONGEST), texts)).encode()
    data = np.frombuffer(padded, np.uint8)
    millis, ok = parse_rfc3339(data, np.arange(count) * LONGEST, lengths)
    return millis, ~ok


def _slow_line(raw: bytes, max_record_bytes: int) -> ContactEvent | Rejection | None:
    """The reference path for one line: blank lines skipped, the rest ``decode_contact``."""
    if not raw.strip():
        return None
    return decode_contact(raw, max_record_bytes)


# -- figures ------------------------------------------------------------------------------------


def figures_of(
    contacts: Contacts, calendar: Calendar, kind: PeriodKind, repeat_interval_ms: int
) -> list[PeriodFigures]:
    """Per-period figures of the contacts; of a (customer, contact_id) the first counts."""
    if not len(contacts.timestamps):
        return []
    # Finding duplicates and grouping customers need not wait for each other, and numpy's
    # sorts and gathers let go of the GIL: a thread puts the second core to work here too.
    with ThreadPoolExecutor(max_workers=1) as pool:
        duplicates = pool.submit(_duplicates, contacts)
        order, numbers = _customer_numbers(contacts.customers)
        counted = ~duplicates.result()[order]
    customer, timestamp = _by_time(numbers[counted], order[counted], contacts.timestamps)
    periods, period_index = _periods(timestamp, calendar, kind)
    totals = _tally(customer, timestamp, period_index, len(periods), repeat_interval_ms)
    return [
        PeriodFigures(period, Figures(*(int(column[index]) for column in totals)))
        for index, period in enumerate(periods)
    ]


def _duplicates(contacts: Contacts) -> BoolArray:
    """Rows repeating an earlier row's customer and contact_id.

    Equal hashes of the pair are rare: only those rows are compared, exactly.
    """
    customers, contact_ids = contacts.customers, contacts.contact_ids
    pairs = _scrambled((customers.hashes * _MULTIPLIER) ^ contact_ids.hashes)
    duplicate = np.zeros(len(pairs), np.bool_)
    ordered = np.sort(pairs)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    if not len(repeated):
        return duplicate
    candidates = np.flatnonzero(np.isin(pairs, repeated))
    order = candidates[np.argsort(pairs[candidates], kind="stable")]  # input order among equals
    later, earlier = order[1:], order[:-1]
    same_hash = pairs[later] == pairs[earlier]
    same = same_hash & customers.equal(later, earlier) & contact_ids.equal(later, earlier)
    if (same == same_hash).all():
        duplicate[later[same]] = True
        return duplicate
    # Different pairs with one hash: compare every candidate with those before it, exactly.
    seen: set[tuple[tuple[int, bytes], tuple[int, bytes]]] = set()
    for row in candidates.tolist():
        key = (customers.key(row), contact_ids.key(row))
        duplicate[row] = key in seen
        seen.add(key)
    return duplicate


def _by_time(
    numbers: Int64Array, order: Int64Array, timestamps: Int64Array
) -> tuple[Int64Array, Int64Array]:
    """Customer numbers and timestamps sorted by customer, then time, from rows ``order``
    sorted by customer, then input order (``numbers``: their customers)."""
    times = timestamps[order]
    if (timestamps[1:] >= timestamps[:-1]).all():  # the usual input: in time order
        return numbers, times  # each customer's rows are in input order, so in time order
    oldest = int(times.min())
    time_bits = max(1, (int(times.max()) - oldest).bit_length())
    if time_bits + max(1, int(numbers[-1]).bit_length()) > 63:
        again = np.lexsort((times, numbers))
        return numbers[again], times[again]
    keys = (numbers << time_bits) | (times - oldest)
    keys.sort()  # a sort of values (fast), not of indices
    return keys >> time_bits, (keys & ((1 << time_bits) - 1)) + oldest


def _customer_numbers(customers: Identifiers) -> tuple[Int64Array, Int64Array]:
    """Rows sorted by customer (then input order), and a number per customer for each.

    Sorted by hash and row (one sort of values: the row rides in the low bits), a run of
    one customer is numbered in turn; each row is compared with its neighbour exactly.
    """
    count = len(customers.lengths)
    bits = max(1, (count - 1).bit_length())
    shift = np.uint64(bits)
    keys = ((customers.hashes >> shift) << shift) | np.arange(count, dtype=np.uint64)
    keys.sort()
    order = (keys & np.uint64((1 << bits) - 1)).astype(np.int64)
    top = keys >> shift
    same_top = top[1:] == top[:-1]
    same = same_top & customers.same_as_previous(order)
    starts = np.ones(count, np.bool_)
    starts[1:] = ~same
    numbers = np.cumsum(starts) - 1
    clash = same_top & ~same
    if clash.any():
        # Different customers share the hash bits kept and their rows interleave: number
        # those rows exactly, past the others, and order them again.
        shared = np.isin(top, top[1:][clash])
        table: dict[tuple[int, bytes], int] = {}
        for at, row in zip(np.flatnonzero(shared).tolist(), order[shared].tolist(), strict=True):
            numbers[at] = count + table.setdefault(customers.key(row), len(table))
        again = np.lexsort((order, numbers))
        order, numbers = order[again], numbers[again]
    return order, numbers


# Past this many periods between the oldest and newest contact, skip the empty ones early.
_MAX_WALKED_PERIODS = 4096


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
    customer: Int64Array,
    timestamp: Int64Array,
    period: Int64Array,
    period_count: int,
    repeat_interval_ms: int,
) -> tuple[Int64Array, ...]:
    """contacts, customers, repeat customers, repeat contacts, resolved, unresolved and
    provisional contacts per period (``Figures`` order), of contacts sorted by customer and
    time (``period``: each one's period index).

    A contact's predecessor is the row before it when both are the customer's, and its
    follow-up the row after. Ties in time need no contact_id order: repeats, resolution and
    periods depend only on the timestamps. Resolution is judged at the newest contact, as
    ``batch.figures_per_period`` does.
    """
    count = len(customer)
    same_customer = customer[1:] == customer[:-1]
    close = same_customer & (timestamp[1:] - timestamp[:-1] <= repeat_interval_ms)
    # Each contact's kind, counted per period in one pass: resolved 0, unresolved 2,
    # provisional 4, plus 1 for a repeat.
    kind = np.zeros(count, np.int64)
    kind[:-1] = 2 * close  # followed up in time: unresolved
    kind[int(timestamp.max()) - timestamp <= repeat_interval_ms] = 4
    kind[1:] += close
    contacts = np.bincount(period * 6 + kind, minlength=6 * period_count).reshape(-1, 6)
    starts_group = np.ones(count, np.bool_)  # one group: a customer in one period
    starts_group[1:] = ~same_customer | (period[1:] != period[:-1])
    group_starts = np.flatnonzero(starts_group)
    repeated = np.diff(np.append(group_starts, count)) >= 2
    groups = np.bincount(period[group_starts] * 2 + repeated, minlength=2 * period_count)
    customers = groups.reshape(-1, 2)
    return (
        contacts.sum(axis=1),
        customers.sum(axis=1),
        customers[:, 1],
        contacts[:, 1::2].sum(axis=1),
        contacts[:, 0] + contacts[:, 1],
        contacts[:, 2] + contacts[:, 3],
        contacts[:, 4] + contacts[:, 5],
    )
