"""The traffic generator: deterministic, at the asked rate, skewed, schema-valid, launchable."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from datetime import datetime

import click
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.cli.simulate import build_config, launch_offset_s, parse_speed, parse_start
from stream.engine import ContactEvent, decode_contact
from stream.simulate import SimConfig, default_customers, format_timestamp_ms, generate
from stream.simulate.generator import diurnal_factor, launch_boost
from stream.simulate.runner import SimClock, SimulationReport

# Midnight UTC, so a whole number of simulated days covers whole diurnal cycles.
START = 1_700_006_400.0
DAY = 86_400.0


def sample(config: SimConfig, *, days: float = 0.0, limit: int | None = None) -> list:
    until = START + days * DAY if days else None
    return list(generate(config, START, until=until, limit=limit))


def test_same_seed_same_events_other_seed_other_events() -> None:
    config = SimConfig(rate=5, customers=10_000, seed=7)
    first = [c.event for c in generate(config, START, limit=2_000)]
    again = [c.event for c in generate(config, START, limit=2_000)]
    other = [
        c.event for c in generate(SimConfig(rate=5, customers=10_000, seed=8), START, limit=2_000)
    ]
    assert first == again
    assert first != other


def test_events_are_valid_ordered_and_unique() -> None:
    contacts = sample(SimConfig(rate=3, customers=5_000, seed=1), limit=5_000)
    ids = [c.event["contact_id"] for c in contacts]
    assert len(set(ids)) == len(ids)
    assert [c.at for c in contacts] == sorted(c.at for c in contacts)
    for contact in contacts:
        event = contact.event
        assert set(event) == {
            "contact_id",
            "customer_id",
            "timestamp",
            "channel",
            "reason",
            "direction",
        }
        assert event["timestamp"].endswith("Z")
        parsed = datetime.fromisoformat(event["timestamp"])
        assert parsed.utcoffset() is not None and parsed.utcoffset().total_seconds() == 0
        assert math.isclose(parsed.timestamp(), contact.at, abs_tol=1e-3)
        decoded = decode_contact(_dumps(event))
        assert isinstance(decoded, ContactEvent), decoded
        assert contact.key == event["customer_id"]
    outbound = sum(c.event["direction"] == "outbound" for c in contacts) / len(contacts)
    assert 0.005 < outbound < 0.05


def _dumps(event: dict) -> bytes:
    import orjson

    return orjson.dumps(event)


def test_rate_over_simulated_days_matches_within_tolerance() -> None:
    contacts = sample(SimConfig(rate=0.5, customers=20_000, seed=3), days=2)
    expected = 0.5 * 2 * DAY
    assert abs(len(contacts) - expected) < 0.02 * expected


def test_diurnal_curve_puts_more_contacts_in_office_hours() -> None:
    contacts = sample(SimConfig(rate=0.5, customers=20_000, seed=4), days=1)
    hours = Counter(int((c.at % DAY) // 3600) for c in contacts)
    office = sum(hours[h] for h in range(10, 18))
    night = sum(hours[h] for h in range(0, 8))
    assert office > 2 * night


def test_diurnal_factor_has_mean_one_over_a_day() -> None:
    values = [diurnal_factor(START + m * 60, 0.6, 14.0) for m in range(24 * 60)]
    assert math.isclose(sum(values) / len(values), 1.0, abs_tol=1e-9)


def test_customer_popularity_is_skewed_like_zipf() -> None:
    config = SimConfig(rate=1, customers=50_000, seed=5, repeat_probability=0.0)
    contacts = [c for c in sample(config, limit=40_000) if c.event["direction"] == "inbound"]
    per_customer = Counter(c.event["customer_id"] for c in contacts)
    top = sorted(per_customer.values(), reverse=True)[: config.customers // 100]
    # Uniform popularity would give the top 1% of customers about 1% of the contacts.
    assert sum(top) / len(contacts) > 0.15
    assert per_customer.most_common(1)[0][1] > 20


def test_repeat_probability_drives_repeat_contacts() -> None:
    def repeat_share(p: float) -> float:
        config = SimConfig(rate=1, customers=1_000_000, seed=6, repeat_probability=p)
        contacts = [c for c in sample(config, days=0.5) if c.event["direction"] == "inbound"]
        per_customer = Counter(c.event["customer_id"] for c in contacts)
        return sum(1 for n in per_customer.values() if n >= 2) / len(per_customer)

    assert repeat_share(0.4) > repeat_share(0.0) + 0.1


def test_launch_raises_the_reason_and_channel_share_and_volume() -> None:
    config = SimConfig(
        rate=2,
        customers=200_000,
        seed=9,
        scenario="launch",
        launch_at_s=3 * 3600,
        launch_factor=4,
        launch_reason="billing",
        launch_channel="social",
    )
    contacts = [c for c in sample(config, days=0.25) if c.event["direction"] == "inbound"]
    before = [c.event for c in contacts if c.at < START + 3 * 3600]
    after = [c.event for c in contacts if c.at >= START + 3 * 3600]

    def share(events: list[dict], field: str, value: str) -> float:
        return sum(e[field] == value for e in events) / len(events)

    assert share(after, "reason", "billing") > share(before, "reason", "billing") + 0.2
    assert share(after, "channel", "social") > share(before, "channel", "social") + 0.2
    # Billing is 22% of the mix: x4 adds 66% more contacts, on top of the diurnal rise.
    assert len(after) > 1.5 * len(before)


def test_steady_has_no_launch_and_ramp_is_linear() -> None:
    steady = SimConfig(scenario="steady")
    assert launch_boost(steady, 1e6) == 0.0
    ramp = SimConfig(
        scenario="launch",
        launch_at_s=100,
        launch_ramp_s=100,
        launch_factor=2,
        launch_reason="technical",
    )
    assert launch_boost(ramp, 50) == 0.0
    assert math.isclose(launch_boost(ramp, 150), 0.5 * 0.2)
    assert math.isclose(launch_boost(ramp, 1e6), 0.2)


@pytest.mark.parametrize(
    "bad",
    [
        {"rate": 0},
        {"customers": 0},
        {"scenario": "boom"},
        {"repeat_probability": 1.0},
        {"launch_factor": 0.5},
        {"scenario": "launch", "launch_reason": "nope"},
    ],
)
def test_nonsense_config_is_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        SimConfig(**bad)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10**6), customers=st.integers(1, 500), rate=st.floats(0.01, 50))
def test_any_seed_gives_ordered_valid_events(seed: int, customers: int, rate: float) -> None:
    contacts = list(
        generate(SimConfig(rate=rate, customers=customers, seed=seed), START, limit=200)
    )
    assert len(contacts) == 200
    assert all(a.at <= b.at for a, b in itertools.pairwise(contacts))
    assert all(isinstance(decode_contact(_dumps(c.event)), ContactEvent) for c in contacts)


def test_timestamps_are_rfc3339_utc() -> None:
    assert format_timestamp_ms(1_509_487_847_000) == "2017-10-31T22:10:47Z"
    assert format_timestamp_ms(1_509_487_847_120) == "2017-10-31T22:10:47.120Z"


def test_default_population_scales_with_rate() -> None:
    assert default_customers(10) == 10_000_000
    assert default_customers(0.001) == 10_000


# -- pacing and the command line --------------------------------------------------------------


def test_live_clock_sends_at_event_time() -> None:
    clock = SimClock.live(now_wall=1000.0, now_mono=5.0)
    assert clock.due(1000.0) == 5.0
    assert clock.due(1010.5) == 15.5


def test_accelerated_clock_never_runs_ahead_of_the_wall_clock() -> None:
    fast = SimClock(start=0.0, speed=math.inf, wall_origin=1000.0, mono_origin=0.0)
    assert fast.due(500.0) == 0.0  # history: at once
    assert fast.due(1060.0) == 60.0  # future: when it arrives
    paced = SimClock(start=0.0, speed=60.0, wall_origin=1000.0, mono_origin=0.0)
    assert paced.due(600.0) == 10.0


def test_summary_is_one_line_with_the_seed() -> None:
    report = SimulationReport(
        seed=42,
        scenario="launch",
        topic="contacts",
        sent=3,
        inbound=2,
        outbound=1,
        first_at=START,
        last_at=START + 1,
        elapsed_s=1.5,
    )
    line = report.summary()
    assert "\n" not in line
    assert "3 events (2 inbound, 1 outbound)" in line and "seed 42" in line


def test_cli_parsing_helpers() -> None:
    now = 1_700_000_000.0
    assert parse_start("7d", now) == now - 7 * DAY
    assert parse_start("2017-10-01", now) == 1_506_816_000.0
    assert parse_start("2017-10-01T02:00:00+02:00", now) == 1_506_816_000.0
    with pytest.raises(click.BadParameter):
        parse_start("yesterday", now)
    assert parse_speed(None) == math.inf and parse_speed("60x") == 60.0
    with pytest.raises(click.BadParameter):
        parse_speed("0x")
    assert launch_offset_s("15m", now) == 900.0
    assert launch_offset_s("2023-11-14T22:23:20Z", now) == 600.0


def test_build_config_from_options() -> None:
    options = {
        "rate": 2.0,
        "customers": None,
        "seed": None,
        "scenario": "launch",
        "repeat_probability": 0.3,
        "launch_at": "5m",
        "launch_factor": 2.0,
        "launch_ramp": "10m",
        "launch_reason": "billing",
        "launch_channel": "email",
        "diurnal_amplitude": 0.0,
    }
    config = build_config(options, START)
    assert config.customers == 2_000_000 and 0 <= config.seed < 10**6
    assert (config.launch_at_s, config.launch_ramp_s) == (300.0, 600.0)
    assert config.diurnal_amplitude == 0.0
    with pytest.raises(click.UsageError):
        build_config({**options, "launch_reason": "nope"}, START)
