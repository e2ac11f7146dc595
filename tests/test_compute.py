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


ANONYMOUS_IDS = {"anonymous", "unknown", "guest", "none", "null", "undefined", "n/a"}


def reference_outcome(d: dict, exclude: str, threshold_s: float) -> str | None:
    """The exclusion rules of docs/METRICS.md, written out case by case."""
    status = " ".join((d.get("status") or "").lower().replace("-", " ").replace("_", " ").split())
    wait = d.get("wait_time")
    abandoned = status == "abandoned" or status.startswith("abandoned ")
    short = status == "short abandoned" or (abandoned and wait is not None and wait < threshold_s)
    if short and exclude in ("short", "all"):
        return "short_abandoned"
    if abandoned and not short and exclude == "all":
        return "abandoned"
    customer = (d["customer_id"] or "").strip()
    if customer == "" or customer.lower() in ANONYMOUS_IDS:
        return "anonymous"
    return None


def reference_periods(
    documents: list[dict],
    kind: str,
    zone: str,
    base: float | None,
    exclude: str = "none",
    threshold_s: float = 10,
):
    """One row per period, by brute force over the deduplicated inbound contacts."""
    contacts, seen, excluded_seen = [], set(), set()
    excluded: dict[tuple[int, int], dict[str, int]] = {}
    for d in documents:
        if d.get("direction") == "outbound":
            continue
        ms = int(datetime.fromisoformat(d["timestamp"]).timestamp() * 1000)
        key = ((d["customer_id"] or "").strip(), d["contact_id"])
        outcome = reference_outcome(d, exclude, threshold_s)
        if outcome is not None:
            if key not in excluded_seen:  # the first one wins, as for counted contacts
                excluded_seen.add(key)
                by_outcome = excluded.setdefault(period_range(kind, ms, zone), {})
                by_outcome[outcome] = by_outcome.get(outcome, 0) + 1
            continue
        if key in seen:
            continue
        seen.add(key)
        contacts.append(Contact(key[0], d["contact_id"], ms, "x", "x"))
    rows = []
    newest = max((c.timestamp_ms for c in contacts), default=0)
    for start, end in sorted({period_range(kind, c.timestamp_ms, zone) for c in contacts}):
        figures = figures_in(contacts, start, end, WEEK_MS, newest)[("all", "all")]
        n, customers, repeaters, repeats, resolved, unresolved, provisional = figures
        counts = {
            outcome: excluded.get((start, end), {}).get(outcome, 0)
            for outcome in ("abandoned", "short_abandoned", "anonymous")
        }
        rows.append(
            {
                "period": period_label(kind, start, zone),
                "contacts": n,
                "customers": customers,
                "repeat_customers": repeaters,
                "repeat_contacts": repeats,
                "repeat_contact_rate": repeaters / customers,
                "contact_rate": n / base if base else None,
                "resolved_contacts": resolved,
                "unresolved_contacts": unresolved,
                "provisional_contacts": provisional,
                "first_contact_resolution_rate": (
                    resolved / (resolved + unresolved) if resolved + unresolved else None
                ),
                "anonymous_contacts": counts["anonymous"],
                "excluded_contacts": counts,
                "identity_coverage": n / (n + counts["anonymous"]),
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


@pytest.mark.parametrize("status", [None, "completed"])  # the fast path, the engine path
@pytest.mark.parametrize("period", ["day", "week", "month"])
def test_contacts_at_the_end_of_year_9999_count_in_the_last_period(tmp_path, period, status):
    """The last timestamps accepted, some already 10000-01-01 in Kiritimati (UTC+14): the
    calendar's last period holds them, and its end (10000-01-01T00:00Z, which RFC 3339
    cannot write) is printed as the last instant accepted."""
    documents = [
        {"contact_id": k, "customer_id": "c", "timestamp": t, "status": status}
        for k, t in [("a", "9999-12-31T09:00:00Z"), ("b", "9999-12-31T23:59:59.999Z")]
    ]
    path = write_jsonl(tmp_path / "end.jsonl", documents)
    rows, _ = run_compute(str(path), "--period", period, "--tz", "Pacific/Kiritimati")
    label = {"day": "9999-12-31", "week": "9999-W52", "month": "9999-12"}[period]
    assert [(row["period"], row["end"], row["contacts"]) for row in rows] == [
        (label, "9999-12-31T23:59:59.999Z", 2)
    ]


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
        lambda customer, contact, ms, outbound, status, wait: {
            "contact_id": f"k{contact}",
            "customer_id": customer,
            "timestamp": datetime.fromtimestamp(ms / 1000).astimezone().isoformat(),
            "direction": "outbound" if outbound else "inbound",
            "status": status,
            "wait_time": wait,
        },
        st.sampled_from(["a", "b", "c", "d", "", " ", None, "Guest", " unknown ", "N/A"]),
        st.integers(0, 40),
        st.integers(1_506_000_000, 1_512_000_000).map(lambda s: s * 1000),
        st.booleans(),
        st.sampled_from(
            [None, "", "completed", "abandoned", "Abandoned-In-Queue", "short_abandoned"]
        ),
        st.sampled_from([None, 0, 2.5, 9.999, 10, 45]),
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
    exclude=st.sampled_from(["none", "short", "all"]),
    threshold_s=st.sampled_from([1, 10, 30]),
)
def test_random_files_match_the_reference(tmp_path, documents, kind, zone, exclude, threshold_s):
    path = write_jsonl(tmp_path / "random.jsonl", documents)
    rows, _ = run_compute(
        str(path),
        *("--period", kind, "--tz", zone, "--exclude-abandoned", exclude),
        *("--short-abandon-threshold", f"{threshold_s}s"),
    )
    expected = reference_periods(documents, kind, zone, None, exclude, threshold_s)
    assert without_bounds(rows) == expected


def test_exclusions_worked_example(tmp_path):
    """docs/METRICS.md, "Exclusions": the October example, figure by figure."""
    october = "2017-10-{:02d}T10:00:00Z"
    documents = [
        {"contact_id": "1", "customer_id": "c1", "timestamp": october.format(2)},
        # Hung up after 4 s in the queue, called back a minute later: one contact, not two.
        {
            "contact_id": "2",
            "customer_id": "c2",
            "timestamp": october.format(3),
            "status": "abandoned",
            "wait_time": 4,
        },
        {"contact_id": "3", "customer_id": "c2", "timestamp": october.format(3)},
        # Gave up after 3 minutes: a real attempt, left out only with --exclude-abandoned all.
        {
            "contact_id": "4",
            "customer_id": "c3",
            "timestamp": october.format(5),
            "status": "abandoned",
            "wait_time": 180,
        },
        {"contact_id": "5", "customer_id": "c3", "timestamp": october.format(6)},
        # Two callers with withheld identities: not one customer who called twice.
        {"contact_id": "6", "customer_id": "anonymous", "timestamp": october.format(7)},
        {"contact_id": "7", "customer_id": "", "timestamp": october.format(8)},
    ]
    path = str(write_jsonl(tmp_path / "october.jsonl", documents))
    expected = {
        "none": (5, 3, 2, {"abandoned": 0, "short_abandoned": 0, "anonymous": 2}),
        "short": (4, 3, 1, {"abandoned": 0, "short_abandoned": 1, "anonymous": 2}),
        "all": (3, 3, 0, {"abandoned": 1, "short_abandoned": 1, "anonymous": 2}),
    }
    for exclude, (contacts, customers, repeaters, excluded) in expected.items():
        (row,), _ = run_compute(path, "--exclude-abandoned", exclude)
        assert (row["contacts"], row["customers"], row["repeat_customers"]) == (
            contacts,
            customers,
            repeaters,
        )
        assert row["excluded_contacts"] == excluded
        assert row["anonymous_contacts"] == 2
        assert row["identity_coverage"] == pytest.approx(contacts / (contacts + 2))


def test_exclusion_settings_come_from_flags_or_the_environment(tmp_path, monkeypatch):
    documents = [
        {"contact_id": "1", "customer_id": "c1", "timestamp": "2017-10-01T00:00:00Z"},
        {"contact_id": "2", "customer_id": "Walk-In", "timestamp": "2017-10-01T00:00:00Z"},
    ]
    path = str(write_jsonl(tmp_path / "walk-in.jsonl", documents))
    (row,), _ = run_compute(path)
    assert (row["contacts"], row["anonymous_contacts"]) == (2, 0)
    monkeypatch.setenv("RCR_ANONYMOUS_CUSTOMER_IDS", "walk-in")
    (row,), _ = run_compute(path)
    assert (row["contacts"], row["anonymous_contacts"], row["identity_coverage"]) == (1, 1, 0.5)
    result = CliRunner().invoke(main, ["compute", path, "--short-abandon-threshold", "soon"])
    assert result.exit_code != 0 and "soon" in result.stderr


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


def test_a_chain_counts_once_and_resolution_is_judged_at_the_newest_contact(tmp_path):
    documents = [
        # A chat transferred to phone: one contact, at 10:00, on the first leg.
        {
            "contact_id": "b",
            "customer_id": "u",
            "timestamp": "2017-10-02T10:05:00Z",
            "channel": "phone",
            "chain_id": "ch1",
        },
        {
            "contact_id": "a",
            "customer_id": "u",
            "timestamp": "2017-10-02T10:00:00Z",
            "channel": "chat",
            "chain_id": "ch1",
        },
        # Two days later the customer is back: the chain was not resolved.
        {"contact_id": "c", "customer_id": "u", "timestamp": "2017-10-04T10:00:00Z"},
        # The newest contact: everything within 7 days of it is still provisional.
        {"contact_id": "d", "customer_id": "v", "timestamp": "2017-10-20T10:00:00Z"},
    ]
    path = write_jsonl(tmp_path / "chains.jsonl", documents)
    (row,), _ = run_compute(str(path))
    assert (row["contacts"], row["customers"], row["repeat_contacts"]) == (3, 2, 1)
    assert (row["resolved_contacts"], row["unresolved_contacts"]) == (1, 1)
    assert row["provisional_contacts"] == 1
    assert row["first_contact_resolution_rate"] == 0.5


def test_the_semantics_come_from_the_worker_variables_unless_flags_say_otherwise(
    tmp_path, monkeypatch
):
    documents = [
        {"contact_id": "1", "customer_id": "c1", "timestamp": "2017-10-31T23:30:00Z"},
        {"contact_id": "2", "customer_id": "c1", "timestamp": "2017-11-01T00:30:00Z"},
    ]
    path = str(write_jsonl(tmp_path / "two.jsonl", documents))
    monkeypatch.setenv("RCR_TIMEZONE", "Europe/Paris")
    monkeypatch.setenv("RCR_REPEAT_INTERVAL", "30m")
    monkeypatch.setenv("RCR_CUSTOMER_BASE", "10")
    (row,), _ = run_compute(path)
    assert (row["period"], row["repeat_contacts"], row["contact_rate"]) == ("2017-11", 0, 0.2)
    rows, _ = run_compute(path, "--tz", "UTC", "--repeat-interval", "1h")
    assert [(r["period"], r["repeat_contacts"]) for r in rows] == [("2017-10", 0), ("2017-11", 1)]
