"""Worked examples: the contract's seeds and every boundary, stated exactly."""

from __future__ import annotations

import math

import pytest

from stream.engine import (
    TOTAL,
    ContactEvent,
    CustomerTimeline,
    Engine,
    EngineConfig,
    Figures,
    Outcome,
    Rejection,
    RejectReason,
)
from stream.engine.definitions import Definition, MatchingKey
from stream.engine.lookup import Lookups
from stream.engine.timeline import TimelineReader, dimension_label

HOUR = 3_600_000
DAY = 24 * HOUR
OCT_31_2017 = 1_509_408_000_000  # 2017-10-31T00:00Z, a Tuesday
NOV_1_2017 = OCT_31_2017 + DAY


def engine_at(now_ms: int, **config: object) -> Engine:
    return Engine(EngineConfig(**config), now_ms=now_ms)  # type: ignore[arg-type]


def total(engine: Engine, window: str) -> Figures:
    """The repeat figures of all contacts (resolution has examples of its own below)."""
    figures = engine.figures()[window].get(TOTAL, Figures())
    return Figures(*tuple(figures)[:4])


def resolution(engine: Engine, window: str, label: tuple[str, str] = TOTAL) -> tuple[int, ...]:
    """(resolved, unresolved, provisional) contacts of a window."""
    return tuple(engine.figures()[window].get(label, Figures()))[4:]


def test_seed_example_repeat_contact_rate_is_a_share_of_customers():
    # 100 customers in October, 20 of them more than once: 0.20.
    engine = engine_at(NOV_1_2017 - 1)
    for customer in range(100):
        times = 3 if customer < 20 else 1
        for n in range(times):
            contact = ContactEvent(f"{customer}-{n}", f"c{customer}", OCT_31_2017 - n * DAY)
            assert engine.ingest(contact) is Outcome.ACCEPTED
    month = total(engine, "month")
    assert (month.customers, month.repeat_customers) == (100, 20)
    assert month.repeat_contact_rate == pytest.approx(0.20)


def test_seed_example_contact_rate_is_contacts_over_the_customer_base():
    # 200 contacts in October over a base of 950: 0.2105.
    engine = engine_at(NOV_1_2017 - 1)
    for n in range(200):
        engine.ingest(ContactEvent(f"k{n}", f"c{n % 120}", OCT_31_2017 - (n % 30) * DAY))
    month = total(engine, "month")
    assert month.contacts == 200
    assert month.contact_rate(950) == pytest.approx(0.2105, abs=5e-5)
    assert math.isnan(month.contact_rate(None))


def test_a_contact_exactly_one_repeat_interval_after_its_predecessor_is_a_repeat():
    engine = engine_at(OCT_31_2017, repeat_interval_ms=HOUR)
    engine.ingest(ContactEvent("a", "u", OCT_31_2017 - HOUR))
    engine.ingest(ContactEvent("b", "u", OCT_31_2017))
    engine.ingest(ContactEvent("c", "v", OCT_31_2017 - HOUR - 1))
    engine.ingest(ContactEvent("d", "v", OCT_31_2017))
    assert total(engine, "24h").repeat_contacts == 1


def test_ties_in_time_are_ordered_by_contact_id():
    # Same instant: "a" comes first, so "b" (chat) is the repeat, not "a" (phone).
    engine = engine_at(OCT_31_2017)
    engine.ingest(ContactEvent("b", "u", OCT_31_2017, channel="chat"))
    engine.ingest(ContactEvent("a", "u", OCT_31_2017, channel="phone"))
    figures = engine.figures()["1h"]
    assert figures[("chat", "all")].repeat_contacts == 1
    assert figures[("phone", "all")].repeat_contacts == 0


def test_rolling_windows_are_open_at_the_start_and_closed_at_now():
    engine = engine_at(OCT_31_2017)
    engine.ingest(ContactEvent("old", "u", OCT_31_2017 - HOUR))
    engine.ingest(ContactEvent("new", "v", OCT_31_2017 - HOUR + 1))
    assert total(engine, "1h").contacts == 1


def test_advancing_the_clock_alone_expires_contacts():
    engine = engine_at(OCT_31_2017)
    engine.ingest(ContactEvent("a", "u", OCT_31_2017 - 10 * 60_000))
    engine.ingest(ContactEvent("b", "u", OCT_31_2017))
    assert total(engine, "1h") == Figures(2, 1, 1, 1)
    engine.advance(OCT_31_2017 + 50 * 60_000)
    assert total(engine, "1h") == Figures(1, 1, 0, 1)  # "b" still a repeat of "a"
    engine.advance(OCT_31_2017 + HOUR)
    assert total(engine, "1h") == Figures()


def test_a_late_contact_makes_its_successor_a_repeat_in_every_window():
    engine = engine_at(OCT_31_2017, repeat_interval_ms=DAY)
    engine.ingest(ContactEvent("b", "u", OCT_31_2017))
    engine.ingest(ContactEvent("z", "u", OCT_31_2017 - 3 * DAY))
    assert total(engine, "1h").repeat_contacts == 0
    engine.ingest(ContactEvent("a", "u", OCT_31_2017 - 2 * HOUR))  # arrives late
    assert total(engine, "1h") == Figures(1, 1, 0, 1)
    assert total(engine, "7d") == Figures(3, 1, 1, 1)


def test_calendar_periods_roll_into_previous_ones():
    engine = engine_at(NOV_1_2017 - HOUR)
    engine.ingest(ContactEvent("a", "u", NOV_1_2017 - 2 * HOUR))
    assert total(engine, "month").contacts == 1
    engine.advance(NOV_1_2017)
    assert total(engine, "month") == Figures()
    assert total(engine, "previous_month").contacts == 1
    assert total(engine, "previous_day").contacts == 1
    assert total(engine, "week").contacts == 1  # the ISO week runs on
    engine.advance(NOV_1_2017 + 40 * DAY)
    assert total(engine, "previous_month") == Figures()


def test_a_contact_opening_a_period_between_reads_starts_it():
    """Between reads the windows lag the clock, but a period opens before its first
    contact is counted: the old day keeps its contacts, the new one starts with its own."""
    engine = engine_at(NOV_1_2017 - 60_000)
    outcomes = [
        engine.ingest(ContactEvent("a", "u", NOV_1_2017 - 1)),
        engine.ingest(ContactEvent("b", "u", NOV_1_2017)),
        engine.ingest(ContactEvent("c", "v", NOV_1_2017 + 1)),
    ]
    assert outcomes == [Outcome.ACCEPTED] * 3
    assert total(engine, "previous_day") == Figures(1, 1, 0, 0)
    # u's second contact repeats the first, but only one of them is in the new day.
    assert total(engine, "day") == Figures(2, 2, 0, 1)
    assert total(engine, "previous_month").contacts == 1
    assert total(engine, "1h") == Figures(3, 2, 1, 1)


def test_lateness_is_judged_against_the_newest_event_even_between_reads():
    """A 90-day window reaches further back than the previous month: the retention is
    the window's, and an event that moved the clock moved it, read or not."""
    engine = engine_at(NOV_1_2017 + 10 * DAY, windows={"90d": 90 * DAY})
    newest = NOV_1_2017 + 10 * DAY + 4 * 60_000
    assert engine.ingest(ContactEvent("a", "u", newest)) is Outcome.ACCEPTED
    late = engine.ingest(ContactEvent("b", "v", newest - 90 * DAY))
    assert isinstance(late, Rejection) and late.reason is RejectReason.TOO_LATE


def test_outbound_is_ignored_and_duplicates_count_once():
    engine = engine_at(OCT_31_2017)
    assert engine.ingest(ContactEvent("o", "u", OCT_31_2017, inbound=False)) is Outcome.IGNORED
    assert engine.ingest(ContactEvent("a", "u", OCT_31_2017)) is Outcome.ACCEPTED
    assert engine.ingest(ContactEvent("a", "u", OCT_31_2017)) is Outcome.DUPLICATE
    assert total(engine, "1h").contacts == 1


def test_lateness_and_clock_skew_limits():
    engine = engine_at(OCT_31_2017)  # previous month starts 2017-09-01
    sept_1 = 1_504_224_000_000  # 2017-09-01T00:00Z
    assert engine.ingest(ContactEvent("a", "u", sept_1)) is Outcome.ACCEPTED
    too_late = engine.ingest(ContactEvent("b", "u", sept_1 - 1))
    assert too_late.reason is RejectReason.TOO_LATE  # type: ignore[union-attr]
    assert engine.ingest(ContactEvent("c", "u", OCT_31_2017 + 5 * 60_000)) is Outcome.ACCEPTED
    future = engine.ingest(ContactEvent("d", "u", OCT_31_2017 + 5 * 60_000 + 1))
    assert future.reason is RejectReason.TOO_FAR_IN_FUTURE  # type: ignore[union-attr]


def test_old_contacts_are_forgotten_once_they_cannot_matter():
    engine = engine_at(OCT_31_2017)
    engine.ingest(ContactEvent("a", "u", OCT_31_2017))
    engine.advance(OCT_31_2017 + 100 * DAY)
    assert "u" not in engine.customers
    assert "u" in engine.take_changed()


def test_label_values_beyond_the_limit_fold_into_other():
    engine = engine_at(OCT_31_2017, max_label_values=2)
    for n, channel in enumerate(["phone", "chat", "email", "social"]):
        engine.ingest(ContactEvent(f"k{n}", f"c{n}", OCT_31_2017, channel=channel))
    channels = {label[0] for label in engine.figures()["1h"] if label[1] == "all"}
    assert channels == {"all", "phone", "chat", "other"}
    assert engine.figures()["1h"][("other", "all")].contacts == 2


def test_a_contact_is_provisional_until_its_interval_has_passed_then_resolved():
    engine = engine_at(OCT_31_2017, repeat_interval_ms=DAY)
    engine.ingest(ContactEvent("a", "u", OCT_31_2017))
    assert resolution(engine, "7d") == (0, 0, 1)
    engine.advance(OCT_31_2017 + DAY)  # exactly one interval later: a follow-up may come
    assert resolution(engine, "7d") == (0, 0, 1)
    engine.advance(OCT_31_2017 + DAY + 1)
    assert resolution(engine, "7d") == (1, 0, 0)


def test_a_follow_up_within_the_interval_makes_the_first_contact_unresolved():
    engine = engine_at(OCT_31_2017 + DAY, repeat_interval_ms=DAY)
    engine.ingest(ContactEvent("a", "u", OCT_31_2017, "chat", "billing"))
    engine.ingest(ContactEvent("b", "u", OCT_31_2017 + DAY, "phone", "billing"))
    engine.advance(OCT_31_2017 + 3 * DAY)
    # The first contact failed; the follow-up itself was resolved. Attribution goes to
    # the first contact's channel: chat, not phone.
    assert resolution(engine, "7d") == (1, 1, 0)
    assert resolution(engine, "7d", ("chat", "all")) == (0, 1, 0)
    assert resolution(engine, "7d", ("phone", "all")) == (1, 0, 0)


def test_a_late_follow_up_turns_a_resolved_contact_unresolved():
    engine = engine_at(OCT_31_2017, repeat_interval_ms=DAY)
    engine.ingest(ContactEvent("a", "u", OCT_31_2017 - 3 * DAY))
    assert resolution(engine, "7d") == (1, 0, 0)
    engine.ingest(ContactEvent("b", "u", OCT_31_2017 - 2 * DAY - HOUR))
    assert resolution(engine, "7d") == (1, 1, 0)


def test_maturity_is_the_share_of_a_window_older_than_the_interval():
    engine = engine_at(OCT_31_2017, repeat_interval_ms=DAY)
    maturity = engine.maturity()["default"]
    assert maturity["1h"] == 0.0
    assert maturity["24h"] == 0.0
    assert maturity["7d"] == pytest.approx(6 / 7, abs=1e-6)
    assert maturity["previous_month"] == 1.0
    assert maturity["day"] == 0.0  # 2017-10-31T00:00Z: the day has just begun


def test_an_extra_dimension_counts_per_value_and_appears_in_the_lookup():
    engine = engine_at(OCT_31_2017, dimensions=("queue",))
    engine.ingest(ContactEvent("a", "u", OCT_31_2017 - HOUR, dimensions=("billing",)))
    engine.ingest(ContactEvent("b", "u", OCT_31_2017, dimensions=("billing",)))
    engine.ingest(ContactEvent("c", "v", OCT_31_2017))  # no queue: unknown
    day = engine.figures()["24h"]
    assert day[dimension_label("queue", "billing")] == Figures(2, 1, 1, 1, 0, 0, 2)
    assert day[dimension_label("queue", "unknown")].customers == 1
    assert day[TOTAL].customers == 2  # the contract's figures are unchanged
    lookups = Lookups({"24h": DAY}, DAY, (3, HOUR))
    fields = lookups.view("u", engine.customers["u"], engine.now_ms).fields
    assert fields["last_queue"] == "billing"


def test_the_lookup_says_whether_the_last_contact_repeats_under_each_definition():
    same_issue = Definition("same_issue", MatchingKey.CUSTOMER_REASON, DAY)
    quick = Definition("quick", MatchingKey.CUSTOMER, HOUR)
    engine = engine_at(OCT_31_2017)
    engine.ingest(ContactEvent("a", "u", OCT_31_2017 - 3 * HOUR, reason="billing"))
    engine.ingest(ContactEvent("b", "u", OCT_31_2017 - 2 * HOUR, reason="login"))
    engine.ingest(ContactEvent("c", "u", OCT_31_2017, reason="billing"))
    lookups = Lookups({"24h": DAY}, 7 * DAY, (3, HOUR), [same_issue, quick])
    fields = lookups.view("u", engine.customers["u"], engine.now_ms).fields
    # The billing call repeats the billing call three hours before (same issue, within a
    # day), and the login call two hours before, which is not within quick's hour.
    assert (fields["is_repeat"], fields["is_repeat_same_issue"], fields["is_repeat_quick"]) == (
        "1",
        "1",
        "0",
    )


def test_a_chain_leg_replaced_under_another_reason_leaves_no_stale_unit():
    # Found by the property test: the replaced leg's unit (customer + billing) is emptied in
    # the same-issue lens while the expiry index still lists it.
    same_issue = Definition("same_issue", MatchingKey.CUSTOMER_REASON, HOUR)
    engine = engine_at(OCT_31_2017, repeat_interval_ms=HOUR, definitions=(same_issue,))
    engine.ingest(ContactEvent("a", "c", OCT_31_2017 + 1, reason="billing", chain_id="x"))
    assert engine.ingest(ContactEvent("b", "c", OCT_31_2017, reason="login", chain_id="x")) is (
        Outcome.CHAINED
    )
    engine.advance(OCT_31_2017 + 2 * HOUR)
    totals = engine.definition_figures()["same_issue"]["24h"][TOTAL]
    assert (totals.contacts, totals.resolved_contacts) == (1, 1)
    assert resolution(engine, "24h", ("all", "login")) == (1, 0, 0)


def test_stored_timelines_read_back_in_every_format_written():
    queue = dimension_label("queue", "vip")
    # Four fields (no dimensions, as older versions wrote every contact), then five.
    stored = b'[[1,"a","phone","billing"],[2,"b","chat","login",[["queue","vip"]]]]'
    assert CustomerTimeline.from_bytes(stored).contacts == [
        (1, "a", "phone", "billing", ()),
        (2, "b", "chat", "login", (queue,)),
    ]
    timeline = CustomerTimeline.from_bytes(stored)
    assert CustomerTimeline.from_bytes(timeline.to_bytes()) == timeline
    # Read for the dimensions configured now: a missing one is unknown, another forgotten.
    by_tier = TimelineReader(("tier",)).read(stored).contacts
    assert [contact[4] for contact in by_tier] == [(dimension_label("tier", "unknown"),)] * 2
    assert TimelineReader(()).read(stored).contacts[1][4] == ()


def test_a_rebuild_forgets_customers_without_contacts_left():
    old, recent = OCT_31_2017 - 90 * DAY, OCT_31_2017 - HOUR
    customers = {
        "gone": CustomerTimeline([(old, "a", "chat", "login", ())]),
        "empty": CustomerTimeline(),
        "kept": CustomerTimeline([(old, "b", "chat", "login", ()), (recent, "c", "chat", "x", ())]),
    }
    engine = Engine(EngineConfig(), now_ms=OCT_31_2017, customers=customers)
    engine.rebuild()
    assert set(engine.customers) == {"kept"}
    assert engine.customers["kept"].contacts == [(recent, "c", "chat", "x", ())]
    assert engine.take_changed() == {"gone", "empty"}
    assert total(engine, "24h") == Figures(contacts=1, customers=1)


@pytest.mark.parametrize("zone", ["UTC", "Pacific/Kiritimati", "Etc/GMT+12"])
def test_contacts_in_the_last_minutes_of_year_9999_count_in_the_calendars_last_periods(zone):
    """The last timestamp accepted, 9999-12-31T23:59:59.999Z, within the clock skew of a
    worker at 23:58: it becomes now and counts in the last day, week and month (which end
    at 10000-01-01T00:00Z in every zone); the clock then moves up to it; a restart finds
    the same figures."""
    end_of_time = 253_402_300_800_000  # 10000-01-01T00:00Z
    engine = engine_at(end_of_time - 2 * 60_000, timezone=zone)
    assert engine.ingest(ContactEvent("a", "u", end_of_time - 6 * DAY)) is Outcome.ACCEPTED
    assert engine.ingest(ContactEvent("b", "u", end_of_time - 1)) is Outcome.ACCEPTED
    assert engine.now_ms == end_of_time - 1
    engine.advance(end_of_time - 1)
    # "a" (9999-12-26T00:00Z, a Sunday, or Saturday west of UTC) is in the week before.
    assert total(engine, "month") == Figures(2, 1, 1, 1)
    assert total(engine, "week") == total(engine, "day") == Figures(1, 1, 0, 1)
    assert total(engine, "previous_week") == Figures(1, 1, 0, 0)
    restarted = Engine(engine.config, now_ms=end_of_time - 1, customers=engine.customers)
    restarted.rebuild()
    assert restarted.figures() == engine.figures()
    lookups = Lookups({"24h": DAY}, DAY, (3, HOUR))
    fields = lookups.view("u", engine.customers["u"], engine.now_ms).fields
    assert fields["last_contact_at"] == "9999-12-31T23:59:59.999Z"
