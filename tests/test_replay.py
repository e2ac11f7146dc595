"""Replay's pure parts: mapping, filters, time parsing, rejections, order, pacing."""

from __future__ import annotations

import asyncio
import gzip
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from stream.cli.replay import replay
from stream.replay import (
    Condition,
    Pacer,
    ReplayError,
    RowError,
    RowSpec,
    convert_row,
    load,
    parse_conditions,
    parse_constants,
    parse_mapping,
    parse_speed,
    parse_time_ms,
    send_records,
    shift_to_now_ms,
)
from tests.datasets import TWCS, TWCS_TIME
from tests.datasets import TWCS_REPLAY_ARGS as TWCS_ARGS


def twcs_spec() -> RowSpec:
    return RowSpec(
        mapping=parse_mapping(["customer_id=author_id,timestamp=created_at,contact_id=tweet_id"]),
        where=parse_conditions(["inbound=True"]),
        constants=parse_constants(["channel=social"]),
        time_format=TWCS_TIME,
    )


def test_twcs_excerpt_inbound_rows_become_contract_events() -> None:
    loaded = load([TWCS], twcs_spec())
    assert loaded.rows == 5_000
    assert loaded.filtered == 2_222
    assert loaded.rejections.total == 0
    assert len(loaded.records) == 2_778
    assert loaded.customers == 1_443
    keys = [(r.timestamp_ms, r.contact_id) for r in loaded.records]
    assert keys == sorted(keys)
    first = loaded.records[0].event
    assert first == {
        "contact_id": "348",
        "customer_id": "115798",
        "timestamp": "2011-08-29T03:20:05Z",
        "channel": "social",
    }
    for record in loaded.records:
        # Free text never leaves: only contract fields are sent.
        assert set(record.event) == {"contact_id", "customer_id", "timestamp", "channel"}
        assert record.key == record.event["customer_id"]


def test_twcs_command_line_dry_run() -> None:
    result = CliRunner().invoke(replay, [str(TWCS), *TWCS_ARGS, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "5000 rows read, 2222 filtered out, 0 rejected" in result.output
    assert "would send 2778 events for 1443 customers" in result.output


def test_twcs_without_time_format_reports_bad_timestamps_with_row_numbers() -> None:
    args = ["--map", "customer_id=author_id,timestamp=created_at,contact_id=tweet_id"]
    result = CliRunner().invoke(replay, [str(TWCS), *args, "--dry-run"])
    assert result.exit_code == 1
    assert "5000 rejected" in result.output
    assert "bad_timestamp" in result.output and "twcs-excerpt.csv rows 1," in result.output


def test_mapping_is_checked_and_reversed_pairs_get_a_hint() -> None:
    assert parse_mapping(["customer_id=a,timestamp=b", "contact_id=c"]) == {
        "customer_id": "a",
        "timestamp": "b",
        "contact_id": "c",
    }
    with pytest.raises(ReplayError, match="did you mean customer_id=author_id"):
        parse_mapping(["author_id=customer_id"])
    with pytest.raises(ReplayError, match="NAME=VALUE"):
        parse_mapping(["customer_id"])
    with pytest.raises(ReplayError, match="only channel, reason, direction"):
        parse_constants(["customer_id=x"])


def test_conditions_compare_text_and_json_values() -> None:
    inbound = Condition("inbound", "True")
    assert inbound.matches({"inbound": "True"}) and inbound.matches({"inbound": True})
    assert not inbound.matches({"inbound": "False"}) and not inbound.matches({})
    (not_email,) = parse_conditions(["channel!=email"])
    assert not_email.matches({"channel": "chat"}) and not not_email.matches({"channel": "email"})
    with pytest.raises(ReplayError):
        parse_conditions(["inbound"])


def test_time_parsing() -> None:
    assert parse_time_ms("Tue Oct 31 22:10:47 +0000 2017", TWCS_TIME) == 1_509_487_847_000
    assert parse_time_ms("Tue Oct 31 23:10:47 +0100 2017", TWCS_TIME) == 1_509_487_847_000
    assert parse_time_ms("31/10/2017 22:10", "%d/%m/%Y %H:%M") == 1_509_487_800_000  # naive: UTC
    assert parse_time_ms("2017-10-31T22:10:47.5Z", None) == 1_509_487_847_500
    assert parse_time_ms(1_509_487_847, None) == 1_509_487_847_000
    assert parse_time_ms("1509487847000", None) == 1_509_487_847_000
    with pytest.raises(RowError) as bad:
        parse_time_ms("yesterday", None)
    assert bad.value.reason == "bad_timestamp"
    with pytest.raises(RowError):
        parse_time_ms("2017-10-31", TWCS_TIME)


def test_convert_row_keeps_only_contract_fields() -> None:
    spec = RowSpec(mapping={"customer_id": "who"}, constants={"reason": "billing"})
    row = {
        "contact_id": 17,
        "who": " c1 ",
        "timestamp": "2024-01-01T00:00:00+02:00",
        "text": "my card number is ...",
        "channel": "",
    }
    assert convert_row(row, spec) == {
        "contact_id": "17",
        "customer_id": "c1",
        "timestamp": "2023-12-31T22:00:00Z",
        "reason": "billing",
    }
    with pytest.raises(RowError, match="customer_id"):
        convert_row({"contact_id": "1", "timestamp": "2024-01-01T00:00:00Z"}, spec)


def test_jsonl_rejections_name_reason_and_line(tmp_path: Path) -> None:
    lines = [
        b'{"contact_id":"b","customer_id":"x","timestamp":"2024-01-01T00:00:02Z","text":"t"}',
        b"not json",
        b'{"contact_id":"c","timestamp":"2024-01-01T00:00:00Z"}',
        b"",
        b'{"contact_id":"d","customer_id":"y","timestamp":1704067200,"direction":"sideways"}',
        b'{"contact_id":"a","customer_id":"x","timestamp":1704067201000,"direction":"outbound"}',
    ]
    path = tmp_path / "events.jsonl.gz"
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    loaded = load([path], RowSpec())
    assert [r.contact_id for r in loaded.records] == ["a", "b"]  # event-time order
    assert "text" not in loaded.records[1].event
    assert loaded.rejections.counts == {"invalid_json": 1, "missing_field": 1, "bad_type": 1}
    assert loaded.rejections.rows("invalid_json") == "events.jsonl.gz line 2"
    assert loaded.rejections.rows("bad_type") == "events.jsonl.gz line 5"


def test_csv_missing_column_fails_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("id,who,when\n1,c1,2024-01-01T00:00:00Z\n")
    with pytest.raises(ReplayError, match=r"no column 'timestamp'.*columns: id, when, who"):
        load([path], RowSpec(mapping={"contact_id": "id", "customer_id": "who"}))
    spec = RowSpec(mapping={"contact_id": "id", "customer_id": "who", "timestamp": "when"})
    assert len(load([path], spec).records) == 1


def test_bare_carriage_returns_do_not_split_csv_rows(tmp_path: Path) -> None:
    path = tmp_path / "cr.csv"
    path.write_bytes(
        b"contact_id,customer_id,timestamp,text\r\n"
        b"1,c1,2024-01-01T00:00:00Z,hello \r\rworld\r\n"
        b"2,c2,2024-01-01T00:00:01Z,bye\r\n"
    )
    loaded = load([path], RowSpec())
    assert loaded.rows == 2 and len(loaded.records) == 2


def test_speed_parsing() -> None:
    assert parse_speed(None) is None and parse_speed("max") is None
    assert parse_speed("60x") == 60.0 and parse_speed("0.5") == 0.5
    for bad in ("fast", "0x", "-1x"):
        with pytest.raises(ReplayError):
            parse_speed(bad)


def test_pacer_spaces_by_event_time_and_cuts_long_gaps() -> None:
    pacer = Pacer(speed=60.0, max_pause_s=5.0)
    assert pacer.delay(1000.0, now=0.0) == 0.0
    assert pacer.delay(1060.0, now=0.0) == 1.0  # a minute of event time per second
    assert pacer.delay(1000.0 + 3600, now=1.0) == 5.0  # an hour's gap: cut to 5s
    assert pacer.delay(1000.0 + 3660, now=6.0) == 1.0  # later spacing is kept
    assert Pacer(None).delay(1e9, now=0.0) == 0.0


def test_shift_to_now_moves_the_newest_event_to_now(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_text(
        '{"contact_id":"a","customer_id":"x","timestamp":"2017-10-31T00:00:00Z"}\n'
        '{"contact_id":"b","customer_id":"x","timestamp":"2017-10-31T01:00:00Z"}\n'
    )
    records = load([path], RowSpec()).records
    shift = shift_to_now_ms(records, now=1_700_000_000.0)
    assert records[-1].timestamp_ms + shift == 1_700_000_000_000
    assert orjson.loads(records[0].payload(shift))["timestamp"] == "2023-11-14T21:13:20Z"


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict]] = []

    async def send(self, key: str, value: bytes) -> None:
        self.sent.append((key, orjson.loads(value)))


def test_send_records_in_order_keyed_by_customer(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text(
        "contact_id,customer_id,timestamp\n"
        "2,y,2024-01-01T00:00:02Z\n1,x,2024-01-01T00:00:01Z\n3,x,2024-01-01T00:00:02Z\n"
    )
    producer = FakeProducer()
    records = load([path], RowSpec()).records
    sent = asyncio.run(send_records(records, producer))
    assert sent == 3
    assert [(k, e["contact_id"]) for k, e in producer.sent] == [("x", "1"), ("y", "2"), ("x", "3")]


def test_anonymous_rows_and_the_optional_fields_the_worker_reads_are_sent() -> None:
    row = {
        "id": "7",
        "who": "  ",
        "at": "2024-01-01T00:00:00Z",
        "queue": "billing",
        "chain_id": "ch-1",
        "status": "abandoned",
        "wait_time": 4,
        "text": "free text never leaves",
    }
    spec = RowSpec(mapping={"contact_id": "id", "customer_id": "who", "timestamp": "at"})
    event = convert_row(row, spec)
    assert event is not None
    assert event["customer_id"] == ""  # blank: anonymous at the worker, not rejected here
    assert (event["queue"], event["chain_id"], event["status"], event["wait_time"]) == (
        "billing",
        "ch-1",
        "abandoned",
        4,
    )
    assert "text" not in event
