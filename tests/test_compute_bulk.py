"""The fast path of ``rcr compute`` against the slow one, on random valid and invalid lines.

The slow path is the reference: ``decode_contact`` on every line (blank lines skipped),
then ``collect_timelines`` and ``figures_per_period``. The fast path (``BulkBatch``, fed by
the CLI's chunk reader) must give the same figures and the same rejections, with the same
line numbers and details, whatever the lines and wherever the chunks are cut.
"""

from __future__ import annotations

import io
import json
import os
from collections import Counter
from datetime import UTC, datetime, timedelta
from unittest.mock import patch

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from stream.cli import compute_parts
from stream.cli.compute_parts import chunks, read_input
from stream.engine import (
    Calendar,
    PeriodKind,
    Rejection,
    bulk,
    bulk_scan,
    collect_timelines,
    decode_contact,
    figures_per_period,
)
from stream.engine.bulk import BulkBatch, _timestamps_ms, figures_of
from stream.engine.exclusions import DEFAULT_ANONYMOUS_CUSTOMER_IDS, parse_anonymous_ids
from stream.engine.validation import parse_timestamp_ms

# Small, so that oversized lines and fields are cheap to make.
MAX_RECORD_BYTES = 2600
WEEK_MS = 7 * 86_400_000
ZONES = ["UTC", "America/New_York", "Europe/Paris", "America/Santiago", "Asia/Kolkata"]


ANONYMOUS = parse_anonymous_ids(DEFAULT_ANONYMOUS_CUSTOMER_IDS)


def slow_path(data: bytes, calendar: Calendar, kind: PeriodKind, interval_ms: int):
    rejections, events = [], []
    for number, line in enumerate(io.BytesIO(data), start=1):
        if not line.strip():
            continue
        decoded = decode_contact(line, MAX_RECORD_BYTES)
        if isinstance(decoded, Rejection):
            rejections.append((number, decoded))
        else:
            events.append(decoded)
    timelines, _ = collect_timelines(events)
    return figures_per_period(timelines.values(), calendar, kind, interval_ms), rejections


def fast_path(data: bytes, chunk_bytes: int, calendar, kind, interval_ms):
    """The fast path's figures and rejections; None when ``rcr compute`` would take the
    engine path for this input instead (chains, abandons or anonymous customers)."""
    rejections: list[tuple[int, Rejection]] = []
    batch = BulkBatch(MAX_RECORD_BYTES, ANONYMOUS)
    line = 1
    for chunk in chunks(io.BytesIO(data), chunk_bytes):
        line += batch.add_lines(chunk, line, lambda n, r: rejections.append((n, r)))
    if batch.needs_engine:
        return None
    return figures_of(batch.contacts(), calendar, kind, interval_ms), rejections


# -- random lines -----------------------------------------------------------------------------

moments = (
    st.datetimes(
        min_value=datetime(1969, 12, 25), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    )
    | st.sampled_from([datetime(2017, 10, 31, 23, 59, 59, 999_999, tzinfo=UTC)])
    # The calendar's last periods, which end where accepted time ends.
    | st.datetimes(min_value=datetime(9999, 11, 20), timezones=st.just(UTC))
)
offsets = st.sampled_from(["Z", "+00:00", "-00:00", "+05:30", "-03:00", "+23:59", "+24:00", "z"])


@st.composite
def rfc3339(draw) -> str:
    """The fast parser's layout and its near misses (fraction digits, offsets, bad dates)."""
    moment = draw(moments)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    digits = draw(st.integers(0, 8))
    if digits:
        fraction = f"{moment.microsecond:06d}{draw(st.integers(0, 99)):02d}"
        text += "." + fraction[:digits]
    elif draw(st.booleans()):
        text += draw(st.sampled_from(["", ".", " "]))
    text += draw(offsets)
    tweak = draw(st.integers(0, 14))
    if tweak == 1:
        text = text.replace("T", draw(st.sampled_from([" ", "t", "_"])), 1)
    elif tweak == 2:
        text = text[:8] + draw(st.sampled_from(["29", "30", "31", "00", "32"])) + text[10:]
    elif tweak == 3:
        text = text[:5] + draw(st.sampled_from(["02", "13", "00"])) + text[7:]
    elif tweak == 4:
        text = text[:11] + draw(st.sampled_from(["24", "23"])) + text[13:]
    elif tweak == 5:
        text = text[:17] + draw(st.sampled_from(["60", "59"])) + text[19:]
    elif tweak == 6:
        text = draw(st.sampled_from(["0000", "0001", "9999", "1970"])) + text[4:]
    elif tweak == 7:
        text = "\u0661" + text[1:]  # a non-ASCII digit
    elif tweak == 8:
        at = draw(st.integers(0, len(text) - 1))
        text = text[:at] + draw(st.sampled_from("a0:-.+Z ")) + text[at + 1 :]
    return text


timestamps = st.one_of(
    rfc3339(),
    rfc3339(),
    st.integers(-10, 2_000_000_000_000),
    st.floats(allow_nan=False) | st.floats(0, 2e12),
    st.sampled_from([True, None, "", "yesterday", [1], {"a": 1}, "2017-10-01T10:00:00"]),
    st.text(max_size=40),
)
identifiers = st.one_of(
    st.sampled_from(["c1", "c2", " c1 ", "c3", "c\u00e9"]),
    st.sampled_from(["", "  ", "\u2003", "x" * 257, " " + "y" * 256 + " ", None, 7, ["c1"]]),
    st.text(max_size=6),
)
contact_ids = st.one_of(st.sampled_from(["k1", "k2", "k3", " k1", "k4"]), identifiers)
labels = st.one_of(
    st.sampled_from([None, "chat", " phone ", "", "all", "  ", "z" * 256, "z" * 257, 3, False]),
    st.text(max_size=5),
)
directions = st.sampled_from([None, "inbound", "outbound", "Outbound", "", 0, ["inbound"]])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=5,
)
raw_extras = st.sampled_from(
    [b"1e400", b"-1E+309", b"1e-400", b"9" * 310, b"1.5e308", b"[" * 1030 + b"]" * 1030,
     b"[" * 1000 + b"]" * 1000, b'"\\ud800"', b'"\\u00e9"', b'"\\n"', b'"\xff"', b'"\xed\xa0\x80"',
     b"NaN", b"01", b"123456789012345678901234567890", b'"\x7f"', b"-0", b"[1,]"]
)  # fmt: skip

FIELDS = {
    "contact_id": contact_ids,
    "customer_id": identifiers,
    "timestamp": timestamps,
    "channel": labels,
    "reason": labels,
    "direction": directions,
}
# A well-formed event, before one or two of its fields are spoilt.
GOOD = {
    "contact_id": st.sampled_from(["k1", "k2", "k3", "k4", "k5"]),
    "customer_id": st.sampled_from(["c1", "c2", "c3", "c\u00e9"]),
    "timestamp": rfc3339(),
    "channel": st.sampled_from([None, "chat", "phone"]),
    "reason": st.sampled_from([None, "billing"]),
    "direction": st.sampled_from([None, "inbound", "inbound", "outbound"]),
}
absent = object()


def dump(value: object) -> bytes:
    """JSON text of any value, big integers and infinities included (orjson refuses those)."""
    return json.dumps(value, ensure_ascii=len(repr(value)) % 2 == 0).encode()


@st.composite
def object_line(draw) -> bytes:
    spoilt = draw(st.sets(st.sampled_from(sorted(FIELDS)), max_size=2))
    members: list[tuple[bytes, bytes]] = []
    for field in FIELDS:
        optional = field not in ("contact_id", "customer_id", "timestamp")
        values = FIELDS[field] if field in spoilt else GOOD[field]
        value = draw(values | st.just(absent)) if optional or field in spoilt else draw(values)
        if value is not absent:
            members.append((dump(field), dump(value)))
    for _ in range(draw(st.integers(0, 2))):  # extra fields, a repeated one, raw oddities
        key = draw(st.sampled_from(["status", "queue", "chain_id", "timestamp", "contact_id"]))
        value = draw(st.one_of(json_values.map(dump), raw_extras))
        members.insert(draw(st.integers(0, len(members))), (dump(key), value))
    space = draw(st.sampled_from([b"", b" ", b"\t", b"\r"]))
    body = (b"," + space).join(key + b":" + space + value for key, value in members)
    ending = draw(st.sampled_from([b"", b"", b"", b" ", b"\r", b"x", b"}"]))
    return space + b"{" + body + b"}" + ending


garbage = st.one_of(
    st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")),
    st.sampled_from([b"", b" ", b"\x0b", b"\r", b"[1]", b"1", b'"x"', b"null", b"{", b"{}"]),
    st.integers(MAX_RECORD_BYTES - 20, MAX_RECORD_BYTES + 2).map(
        lambda n: (
            b'{"contact_id":"k","customer_id":"c","timestamp":1e12,"pad":"'
            + b"p" * (n - 64)
            + b'"}'
        )
    ),
)
lines = st.lists(st.one_of(object_line(), object_line(), object_line(), garbage), max_size=30)


def assert_fast_path_agrees(
    data: bytes, chunk_bytes: int, calendar: Calendar, kind: PeriodKind, interval_ms: int
) -> None:
    """The fast path gives the slow path's figures, or declines (None)."""
    expected = slow_path(data, calendar, kind, interval_ms)
    fast = fast_path(data, chunk_bytes, calendar, kind, interval_ms)
    assert fast is None or fast == expected


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    lines=lines,
    final_newline=st.booleans(),
    chunk_bytes=st.integers(1, 600),
    kind=st.sampled_from(list(PeriodKind)),
    zone=st.sampled_from(ZONES),
    interval_ms=st.sampled_from([0, 1000, 86_400_000, 7 * 86_400_000]),
)
@example(
    lines=[b'{"contact_id":"k","customer_id":"c","timestamp":"2017-10-31T23:59:59.9999999Z"}'],
    final_newline=True,
    chunk_bytes=4096,
    kind=PeriodKind.MONTH,
    zone="UTC",
    interval_ms=0,
)
@example(  # the last week of the calendar, in 10000-01-01 already in Kolkata for the second
    lines=[
        b'{"contact_id":"k","customer_id":"c","timestamp":"9999-12-27T00:00:00Z"}',
        b'{"contact_id":"l","customer_id":"c","timestamp":"9999-12-31T23:59:59.999Z"}',
    ],
    final_newline=True,
    chunk_bytes=4096,
    kind=PeriodKind.WEEK,
    zone="Asia/Kolkata",
    interval_ms=WEEK_MS,
)
@example(  # one contact_id shared by two customers, then repeated by the second
    lines=[
        b'{"contact_id":"k","customer_id":"a","timestamp":"2017-10-01T00:00:00Z"}',
        b'{"contact_id":"k","customer_id":"b","timestamp":"2017-10-02T00:00:00Z"}',
        b'{"contact_id":"k","customer_id":"b","timestamp":"2017-10-03T00:00:00Z"}',
        # identifiers to strip or blank, in compact ASCII lines
        b'{"contact_id":"q","customer_id":" b","timestamp":"2017-10-03T00:00:00Z"}',
        b'{"contact_id":"","customer_id":"b","timestamp":"2017-10-03T00:00:00Z"}',
        b'{"contact_id":"r","customer_id":"b\\t","timestamp":"2017-10-03T00:00:00Z"}',
        # numbers and nesting that msgspec skips and orjson refuses
        b'{"contact_id":"n","customer_id":"b","timestamp":"2017-10-03T00:00:00Z","x":1E+400}',
        b'{"contact_id":"o","customer_id":"b","timestamp":"2017-10-03T00:00:00Z","x":'
        + b"9" * 310
        + b"}",
        b'{"contact_id":"p","customer_id":"b","timestamp":"2017-10-03T00:00:00Z","x":'
        + b"[" * 1030
        + b"]" * 1030
        + b"}",
    ],
    final_newline=False,
    chunk_bytes=100,
    kind=PeriodKind.DAY,
    zone="UTC",
    interval_ms=0,
)
def test_fast_path_equals_slow_path(lines, final_newline, chunk_bytes, kind, zone, interval_ms):
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    calendar = Calendar(zone)
    assert_fast_path_agrees(data, chunk_bytes, calendar, kind, interval_ms)


# -- flat lines: what the numpy scan reads, and its near misses --------------------------------

flat_texts = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters='"\\'), max_size=8
)
ODD_IDENTIFIERS = ["", " ", " c1", "c1 ", "Guest", "ANONYMOUS", "n/A", "guests", "{", '"',
                   "x" * 64, "x" * 65, "X" * 65, "y" * 256, "y" * 257, " " + "z" * 256]  # fmt: skip
# Misspelt, unknown, repeated, chain and status keys.
NEAR_KEYS = ["contact_ids", "Contact_id", "customer_i", "customer_idd", "timestam",
             "timestamps", "chain_id", "status", "wait_time", "queue", "", "directio",
             "reasons", "contact_id "]  # fmt: skip
good_identifiers = st.sampled_from(["c1", "c2", "C1", "k1", "k2", "k3", "2017-10-01T10:00:00Z"])
flat_identifiers = st.one_of(
    good_identifiers,
    good_identifiers,
    good_identifiers,
    st.sampled_from(ODD_IDENTIFIERS),
    flat_texts,
)
good_times = st.sampled_from(
    ["2017-10-01T10:00:00.123Z", "2017-10-31T23:59:59Z", "2017-11-01T00:30:00+01:00"]
)
odd_times = st.sampled_from(["", "1e12", "2017-10-01T10:00:00.1234567Z"])
FLAT = {
    "contact_id": flat_identifiers,
    "customer_id": flat_identifiers,
    "timestamp": good_times | rfc3339() | odd_times,
    "channel": st.sampled_from(["chat", "all", "", " ", "z" * 256, "z" * 257]) | flat_texts,
    "reason": st.sampled_from(["billing", "billing", "z" * 257]) | flat_texts,
    "direction": st.sampled_from(["inbound", "outbound"] * 3 + ["Outbound", "in", "", "inbound "]),
}
GOOD_FLAT = {
    "contact_id": st.sampled_from(["k1", "k2", "k3", "k4", "sim-1a16e9d5e8b-15898"]),
    "customer_id": good_identifiers,
    "timestamp": good_times | rfc3339(),
    "channel": st.sampled_from(["chat", "phone"]),
    "reason": st.sampled_from(["billing", "order_change"]),
    "direction": st.sampled_from(["inbound", "inbound", "outbound"]),
}
near_keys = st.sampled_from(NEAR_KEYS)
padding = st.sampled_from([b"", b"", b"", b" ", b"  "])


@st.composite
def flat_line(draw) -> bytes:
    """One object of string members, as exporters write it, now and then a little off."""
    spoilt = draw(st.sets(st.sampled_from(sorted(FLAT)), max_size=2))
    members = []
    for field, values in FLAT.items():
        required = field in ("contact_id", "customer_id", "timestamp")
        if field not in spoilt:
            values = GOOD_FLAT[field]
        if draw(st.integers(0, 12 if required else 2)):
            members.append((field, draw(values)))
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):  # unknown, misspelt, repeated...
        key = draw(near_keys | st.sampled_from(sorted(FLAT)))
        members.insert(draw(st.integers(0, len(members))), (key, draw(flat_texts)))
    if draw(st.booleans()):
        members = draw(st.permutations(members))

    style = draw(st.sampled_from(["compact", "compact", "spaced", "padded"]))

    def mark(char: bytes) -> bytes:
        if style == "compact":
            return char
        if style == "spaced":  # as Python's json.dumps writes them
            return char + b" " if char in b",:" else char
        return draw(padding) + char + draw(padding)

    body = mark(b",").join(
        orjson.dumps(key) + mark(b":") + orjson.dumps(value) for key, value in members
    )
    ending = draw(st.sampled_from([b"", b"", b"", b" ", b"x", b"}", b"\t", b"\r", b" \r"]))
    return mark(b"{") + body + mark(b"}") + ending


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    lines=st.lists(flat_line() | flat_line() | object_line(), max_size=30),
    chunk_bytes=st.integers(1, 2000) | st.just(1 << 20),
    kind=st.sampled_from(list(PeriodKind)),
    interval_ms=st.sampled_from([0, 86_400_000, 7 * 86_400_000]),
)
def test_flat_lines_are_read_as_the_slow_path_reads_them(lines, chunk_bytes, kind, interval_ms):
    data = b"\n".join(lines) + b"\n"
    calendar = Calendar("Europe/Paris")
    assert_fast_path_agrees(data, chunk_bytes, calendar, kind, interval_ms)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(flat_line() | object_line(), max_size=30), bits=st.integers(0, 3))
def test_equal_hashes_of_different_identifiers_are_told_apart(lines, bits):
    """Hashes cut to a few bits: duplicates and customers still found by exact comparison."""
    data = b"\n".join(lines) + b"\n"
    expected = slow_path(data, Calendar(), PeriodKind.DAY, WEEK_MS)

    mixed = bulk._mixed

    def weak(lengths, words):
        return mixed(lengths, words) & np.uint64((1 << bits) - 1)

    with patch.object(bulk, "_mixed", weak):
        fast = fast_path(data, 4096, Calendar(), PeriodKind.DAY, WEEK_MS)
    assert fast is None or fast == expected


def test_a_customer_is_one_in_chunks_of_any_width():
    """Identifiers take as many words as a chunk's longest needs: the same one in a chunk
    of longer ones is still the same customer."""
    lines = [
        {"contact_id": "k1", "customer_id": "c3", "timestamp": "2017-10-02T10:00:00Z"},
        {"contact_id": "k2", "customer_id": "c" * 40, "timestamp": "2017-10-02T10:00:00Z"},
        {"contact_id": "k3", "customer_id": "c3", "timestamp": "2017-10-03T10:00:00Z"},
    ]
    data = b"".join(orjson.dumps(line) + b"\n" for line in lines)
    expected = slow_path(data, Calendar(), PeriodKind.MONTH, WEEK_MS)
    assert expected[0][0].figures.repeat_customers == 1
    first_two = data.index(b"\n", data.index(b"\n") + 1) + 1
    assert fast_path(data, first_two, Calendar(), PeriodKind.MONTH, WEEK_MS) == expected


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(flat_line() | object_line(), max_size=30), cut=st.integers(0, 30))
def test_a_batch_merged_with_a_later_one_is_one_batch(lines, cut):
    """What the parent does with the child's part: the same contacts as one batch's."""
    first, second = BulkBatch(MAX_RECORD_BYTES), BulkBatch(MAX_RECORD_BYTES)
    first.add_lines(b"".join(line + b"\n" for line in lines[:cut]), 1, lambda *_: None)
    second.add_lines(b"".join(line + b"\n" for line in lines[cut:]), 1, lambda *_: None)
    merged = first.merged_with(second.summary())
    whole = BulkBatch(MAX_RECORD_BYTES)
    whole.add_lines(b"".join(line + b"\n" for line in lines), 1, lambda *_: None)
    assert first.needs_engine == whole.needs_engine
    calendar = Calendar()
    assert figures_of(merged, calendar, PeriodKind.DAY, WEEK_MS) == figures_of(
        whole.contacts(), calendar, PeriodKind.DAY, WEEK_MS
    )


@pytest.mark.parametrize("span_bits", [20, 50])  # 50: too wide to sort both as one number
def test_contacts_are_ordered_by_customer_then_time(span_bits):
    rng = np.random.default_rng(span_bits)
    count = 1 << 15
    words = rng.integers(0, 1 << 12, (count, 1)).astype(np.uint64)
    customers = bulk.Identifiers.of(np.full(count, 8), words)
    timestamps = rng.integers(0, 1 << span_bits, count)
    order, numbers = bulk._customer_numbers(customers)
    numbers, times = bulk._by_time(numbers, order, timestamps)
    assert (np.diff(numbers) >= 0).all()
    assert (np.diff(times)[np.diff(numbers) == 0] >= 0).all()
    assert sorted(Counter(numbers.tolist()).values()) == sorted(Counter(words[:, 0]).values())
    assert sorted(times.tolist()) == sorted(timestamps.tolist())


EXPORTED = {"contact_id": "k1", "customer_id": "c1", "timestamp": "2026-10-24T15:52:49.597Z",
            "channel": "phone", "reason": "billing", "direction": "inbound"}  # fmt: skip


@pytest.mark.parametrize(
    "line",
    [
        orjson.dumps(EXPORTED),
        json.dumps(EXPORTED).encode(),  # ", " and ": "
        orjson.dumps(EXPORTED) + b"\r",  # CRLF
        orjson.dumps(EXPORTED | {"queue": "q1", "timestamp": "2026-10-24T15:52:49+02:00"}),
        orjson.dumps({key: EXPORTED[key] for key in ("timestamp", "customer_id", "contact_id")}),
    ],
)
def test_the_common_layouts_are_read_by_the_scan(line):
    """Not only the same figures: these take the numpy path, none goes line by line."""
    lines = bulk_scan.ChunkLines(line + b"\n" + line + b"\n")
    found = bulk_scan.scan(lines, np.ones(lines.count, np.bool_))
    assert found.contact.all()


ANONYMOUS_LINES = [
    ("Guest", True),
    ("GUEST", True),
    ("n/A", True),
    (" guest", True),  # stripped by decode_contact
    ("", True),
    ("guests", False),
    ("gu est", False),
    ("\uff27uest", False),  # a fullwidth G: casefolds to itself, not to "g"
    ("UNDEFINED" + "d" * 70, False),
]


@pytest.mark.parametrize(("customer", "anonymous"), ANONYMOUS_LINES)
def test_anonymous_customers_are_noticed(customer, anonymous):
    line = {"contact_id": "k", "customer_id": customer, "timestamp": "2017-10-01T10:00:00Z"}
    batch = BulkBatch(MAX_RECORD_BYTES, ANONYMOUS)
    batch.add_lines(orjson.dumps(line) + b"\n", 1, lambda *_: None)
    assert batch.needs_engine == anonymous


@pytest.mark.parametrize(
    "extra",
    [
        b'"status":"abandoned"',
        b'"st\\u0061tus":"abandoned"',  # orjson reads the escaped key as "status"
        b'"chain_id":"x1"',
        b'"wait_time":3',
    ],
)
def test_chains_and_statuses_are_noticed(extra):
    line = b'{"contact_id":"k","customer_id":"c","timestamp":"2017-10-01T10:00:00Z",' + extra
    batch = BulkBatch(MAX_RECORD_BYTES, ANONYMOUS)
    batch.add_lines(line + b"}\n", 1, lambda *_: None)
    assert batch.needs_engine


def test_long_anonymous_ids_are_noticed():
    anonymous = "unknown customer of the web shop, logged out, no e-mail given at checkout"
    line = {
        "contact_id": "k",
        "customer_id": anonymous.upper(),
        "timestamp": "2017-10-01T10:00:00Z",
    }
    batch = BulkBatch(MAX_RECORD_BYTES, frozenset([anonymous]))
    batch.add_lines(orjson.dumps(line) + b"\n", 1, lambda *_: None)
    assert batch.needs_engine


@settings(max_examples=100, deadline=None)
@given(
    start=st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2300, 1, 1)),
    steps=st.lists(st.integers(0, 40 * 86_400_000), min_size=1, max_size=40),
    customers=st.lists(st.sampled_from(["a", "b", "c"]), min_size=40, max_size=40),
    kind=st.sampled_from(list(PeriodKind)),
    zone=st.sampled_from(ZONES),
)
def test_valid_contacts_over_long_spans(start, steps, customers, kind, zone):
    """Well-formed lines only (every one on the fast path), over decades of periods."""
    moment = start.replace(tzinfo=UTC)
    documents = []
    for number, (step, customer) in enumerate(zip(steps, customers, strict=False)):
        moment += timedelta(milliseconds=step * (1 + number % 7) ** 3)
        text = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        documents.append({"contact_id": f"k{number}", "customer_id": customer, "timestamp": text})
    data = b"".join(orjson.dumps(document) + b"\n" for document in documents)
    calendar = Calendar(zone)
    expected = slow_path(data, calendar, kind, 7 * 86_400_000)
    assert expected[1] == []
    assert fast_path(data, 1 << 20, calendar, kind, 7 * 86_400_000) == expected


@settings(max_examples=1000, deadline=None)
@given(texts=st.lists(rfc3339() | st.text(max_size=34), min_size=1, max_size=50))
def test_timestamps_parsed_in_bulk_are_the_slow_paths(texts):
    """Every timestamp the numpy parser takes has the slow parser's value; the rest it leaves."""
    millis, slow = _timestamps_ms(texts)
    for text, value, left in zip(texts, millis.tolist(), slow.tolist(), strict=True):
        if not left:
            assert parse_timestamp_ms(text) == value, text


@settings(max_examples=300, deadline=None)
@given(
    instants=st.lists(
        st.datetimes(datetime(1970, 1, 1), datetime(9999, 12, 31), timezones=st.just(UTC)),
        min_size=1,
        max_size=20,
    ),
    spoilt=st.integers(0, 40),
    char=st.sampled_from("0aZz:.-+ T9/"),
)
def test_millisecond_timestamps_parsed_in_bulk_are_the_slow_paths(instants, spoilt, char):
    """The usual export (milliseconds and "Z" on every line), perhaps one character off."""
    texts = [moment.isoformat(timespec="milliseconds")[:-6] + "Z" for moment in instants]
    if spoilt < 24:
        texts[-1] = texts[-1][:spoilt] + char + texts[-1][spoilt + 1 :]
    millis, slow = _timestamps_ms(texts)
    for text, value, left in zip(texts, millis.tolist(), slow.tolist(), strict=True):
        if not left:
            assert parse_timestamp_ms(text) == value, text
    if spoilt >= 24:
        assert not slow.any()


def test_the_common_layouts_take_the_fast_path():
    texts = ["2026-10-24T13:15:03.273Z", "2017-10-01T10:00:00Z", "2017-10-01T10:00:00+02:00"]
    millis, slow = _timestamps_ms(texts)
    assert not slow.any()
    assert millis.tolist() == [parse_timestamp_ms(text) for text in texts]


class Log:
    def __init__(self) -> None:
        self.rejections: list[tuple[str, int, Rejection]] = []
        self.counts: Counter[str] = Counter()

    def __call__(self, path, number, rejection) -> None:
        self.rejections.append((path.name, number, rejection))

    def count(self, counts) -> None:
        self.counts.update(counts)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(files=st.lists(lines, min_size=1, max_size=3), kind=st.sampled_from(list(PeriodKind)))
def test_two_processes_equal_one(tmp_path_factory, files, kind):
    """The input cut in two, the second part read by a child: the slow path's answer still,
    also when both parts hold a contact_id (then the parent reads the second part itself)."""
    folder = tmp_path_factory.mktemp("parts")
    paths, expected_rejections, events_data = [], [], b""
    for index, file_lines in enumerate(files):
        data = b"\n".join(file_lines) + b"\n"
        path = folder / f"f{index}.jsonl"
        path.write_bytes(data)
        paths.append(path)
        _, rejections = slow_path(data, Calendar(), kind, WEEK_MS)
        expected_rejections += [(path.name, number, why) for number, why in rejections]
        events_data += data
    expected, _ = slow_path(events_data, Calendar(), kind, WEEK_MS)
    log = Log()
    batch = BulkBatch(MAX_RECORD_BYTES, ANONYMOUS)
    contacts = read_input(paths, batch, log, lambda _: None, parallel_from=0)
    if batch.needs_engine:
        return  # rcr compute takes the engine path for this input (tests/test_compute.py)
    assert figures_of(contacts, Calendar(), kind, WEEK_MS) == expected
    assert log.rejections == expected_rejections
    assert not log.counts


def test_customers_of_both_parts_are_matched_exactly(tmp_path):
    documents = [
        {
            "contact_id": f"k{n % 150}",  # the second part repeats contacts of the first
            "customer_id": f"{'p' if n < 100 else 'q'}{n % 7}" + "x" * (n % 3) * 40,
            "timestamp": f"2017-10-{1 + n % 28:02d}T{n % 24:02d}:00:00Z",
        }
        for n in range(200)
    ]
    data = b"".join(orjson.dumps(document) + b"\n" for document in documents)
    path = tmp_path / "halves.jsonl"
    path.write_bytes(data)
    contacts = read_input([path], BulkBatch(MAX_RECORD_BYTES), Log(), lambda _: None, 0)
    expected, _ = slow_path(data, Calendar(), PeriodKind.DAY, WEEK_MS)
    assert figures_of(contacts, Calendar(), PeriodKind.DAY, WEEK_MS) == expected


def test_a_failed_child_leaves_its_part_to_the_parent(tmp_path):
    lines = [
        orjson.dumps(
            {
                "contact_id": f"k{n}",
                "customer_id": f"c{n % 9}",
                "timestamp": f"2017-10-{1 + n % 28:02d}T10:00:00Z",
            }
        )
        for n in range(100)
    ]
    lines[20] = lines[80] = b"{not json"  # one rejection in each part
    data = b"\n".join(lines) + b"\n"
    path = tmp_path / "input.jsonl"
    path.write_bytes(data)

    def failing(*_):
        os._exit(3)

    log = Log()
    with patch.object(compute_parts, "_child", failing):
        contacts = read_input([path], BulkBatch(MAX_RECORD_BYTES), log, lambda _: None, 0)
    expected, rejections = slow_path(data, Calendar(), PeriodKind.DAY, WEEK_MS)
    assert figures_of(contacts, Calendar(), PeriodKind.DAY, WEEK_MS) == expected
    assert log.rejections == [(path.name, number, why) for number, why in rejections]
