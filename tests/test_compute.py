"""``rcr compute`` against the naive reference: seeds, real contacts (TWCS), random files."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.cli import main
from tests.datasets import twcs
from tests.reference import Contact, figures_in, period_label, period_range

WEEK_MS = 7 * 86_400_000


def run_compute(*args: str) -> tuple[list[dict], str]:
    result = CliRunner().invoke(main, ["compute", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return orjson.loads(result.stdout), result.stderr


def write_jsonl(path: Path, documents: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in documents))
    return path


def reference_periods(documents: list[dict], kind: str, zone: str, base: float | None):
    """One row per period, by brute force over the deduplicated inbound contacts."""
    contacts, seen = [], set()
    for d in documents:
        if d.get("direction") == "outbound" or (d["customer_id"], d["contact_id"]) in seen:
            continue
        seen.add((d["customer_id"], d["contact_id"]))
        ms = int(datetime.fromisoformat(d["timestamp"]).timestamp() * 1000)
        contacts.append(Contact(d["customer_id"], d["contact_id"], ms, "x", "x"))
    rows = []
    for start, end in sorted({period_range(kind, c.timestamp_ms, zone) for c in contacts}):
        n, customers, repeaters, repeats = figures_in(contacts, start, end, WEEK_MS)[("all", "all")]
        rows.append(
            {
                "period": period_label(kind, start, zone),
                "contacts": n,
                "customers": customers,
                "repeat_customers": repeaters,
                "repeat_contacts": repeats,
                "repeat_contact_rate": repeaters / customers,
                "contact_rate": n / base if base else None,
            }
        )
    return rows


def without_bounds(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in ("start", "end")} for row in rows]


def twcs_documents() -> list[dict]:
    """The TWCS excerpt in the contract's schema (a few broken CSV rows are skipped)."""
    documents = []
    with twcs().open(newline="") as handle:
        for row in csv.DictReader(handle):
            if not row["created_at"]:
                continue
            moment = datetime.strptime(row["created_at"], "%a %b %d %H:%M:%S %z %Y")
            documents.append(
                {
                    "contact_id": row["tweet_id"],
                    "customer_id": row["author_id"],
                    "timestamp": moment.isoformat(),
                    "channel": "social",
                    "direction": "inbound" if row["inbound"] == "True" else "outbound",
                }
            )
    return documents


@pytest.mark.parametrize("kind", ["month", "week", "day"])
def test_twcs_excerpt_matches_the_reference(tmp_path, kind):
    documents = twcs_documents()
    assert sum(d["direction"] == "inbound" for d in documents) == 2778
    path = write_jsonl(tmp_path / "twcs.jsonl", documents)
    rows, _ = run_compute(str(path), "--period", kind, "--customer-base", "1443")
    assert without_bounds(rows) == reference_periods(documents, kind, "UTC", 1443)
    assert sum(row["contacts"] for row in rows) == 2778


def test_seed_examples(tmp_path):
    october = "2017-10-{:02d}T10:00:00Z"
    documents = [
        {"contact_id": f"{c}-{n}", "customer_id": f"c{c}", "timestamp": october.format(1 + n * 9)}
        for c in range(100)
        for n in range(3 if c < 20 else 1)
    ]
    rows, _ = run_compute(str(write_jsonl(tmp_path / "a.jsonl", documents)))
    assert rows[0]["period"] == "2017-10"
    assert rows[0]["repeat_contact_rate"] == pytest.approx(0.20)
    documents = [
        {"contact_id": f"k{n}", "customer_id": f"c{n}", "timestamp": october.format(1 + n % 30)}
        for n in range(200)
    ]
    rows, _ = run_compute(
        str(write_jsonl(tmp_path / "b.jsonl", documents)), "--customer-base", "950"
    )
    assert rows[0]["contact_rate"] == pytest.approx(0.2105, abs=5e-5)


def test_invalid_lines_are_reported_with_their_numbers_and_never_abort(tmp_path):
    good = {"contact_id": "k", "customer_id": "c", "timestamp": "2017-10-01T00:00:00Z"}
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(orjson.dumps(good) + b"\n{broken\n\n" + b'{"contact_id": "x"}\n')
    rows, stderr = run_compute(str(path), "--format", "json")
    assert rows[0]["contacts"] == 1
    assert f"{path}:2: invalid_json" in stderr
    assert f"{path}:4: missing_field" in stderr
    assert "2 invalid lines" in stderr


def test_periods_follow_the_time_zone(tmp_path):
    # 23:30 UTC on Oct 31 is already November in Paris.
    document = {"contact_id": "k", "customer_id": "c", "timestamp": "2017-10-31T23:30:00Z"}
    path = write_jsonl(tmp_path / "tz.jsonl", [document])
    rows, _ = run_compute(str(path), "--tz", "Europe/Paris")
    assert (rows[0]["period"], rows[0]["start"]) == ("2017-11", "2017-11-01T00:00:00+01:00")


def test_table_output_and_bad_options(tmp_path):
    path = write_jsonl(
        tmp_path / "t.jsonl",
        [{"contact_id": "k", "customer_id": "c", "timestamp": "2017-10-31T23:30:00Z"}],
    )
    result = CliRunner().invoke(main, ["compute", str(path), "--format", "table"])
    assert result.exit_code == 0 and "2017-10" in result.stdout
    result = CliRunner().invoke(main, ["compute", str(path), "--tz", "Mars/Olympus"])
    assert result.exit_code != 0 and "Mars/Olympus" in result.stderr


documents_strategy = st.lists(
    st.builds(
        lambda customer, contact, ms, outbound: {
            "contact_id": f"k{contact}",
            "customer_id": customer,
            "timestamp": datetime.fromtimestamp(ms / 1000).astimezone().isoformat(),
            "direction": "outbound" if outbound else "inbound",
        },
        st.sampled_from("abcd"),
        st.integers(0, 40),
        st.integers(1_506_000_000, 1_512_000_000).map(lambda s: s * 1000),
        st.booleans().map(lambda b: b and False),
    ),
    max_size=40,
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    documents=documents_strategy,
    kind=st.sampled_from(["day", "week", "month"]),
    zone=st.sampled_from(["UTC", "America/New_York"]),
)
def test_random_files_match_the_reference(tmp_path, documents, kind, zone):
    path = write_jsonl(tmp_path / "random.jsonl", documents)
    rows, _ = run_compute(str(path), "--period", kind, "--tz", zone)
    assert without_bounds(rows) == reference_periods(documents, kind, zone, None)


def test_denominators_join_each_period_with_contacts_per_unit(tmp_path):
    """Orders per month from a count file, and contacts per order; other keys unchanged."""
    contacts = [
        {
            "contact_id": f"c{m}-{n}",
            "customer_id": f"u{n % 7}",
            "timestamp": f"2017-{m}-1{n}T10:00:00Z",
        }
        for m in ("10", "11")
        for n in range(6)
    ]
    orders = [
        {"timestamp": "2017-10-03T00:00:00Z"},
        {"timestamp": "2017-10-31T23:30:00Z", "count": 4},  # November in Paris
        {"timestamp": 1_512_086_400},  # 2017-12-01T00:00Z: no contact that month
        {"count": 2},  # no timestamp: a file has no record time, so invalid
    ]
    contacts_file = write_jsonl(tmp_path / "contacts.jsonl", contacts)
    orders_file = write_jsonl(tmp_path / "orders.jsonl", orders)
    plain, _ = run_compute(str(contacts_file), "--tz", "Europe/Paris")
    rows, errors = run_compute(
        str(contacts_file), "--tz", "Europe/Paris", "--denominator", f"orders={orders_file}"
    )
    assert [{k: v for k, v in row.items() if k != "denominators"} for row in rows] == plain
    assert [row["denominators"] for row in rows] == [
        {"orders": {"value": 1, "contacts_per": 6 / 1}},
        {"orders": {"value": 4, "contacts_per": 6 / 4}},
    ]
    assert "orders.jsonl:4: not a count record" in errors


def test_a_bad_denominator_option_is_refused(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [])
    for value in ("Orders=" + str(path), "orders", f"orders={tmp_path / 'missing'}"):
        result = CliRunner().invoke(main, ["compute", str(path), "--denominator", value])
        assert result.exit_code == 2, value
        assert "--denominator" in result.output
