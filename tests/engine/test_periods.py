"""Calendar periods against the naive reference, in zones with and without DST."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.engine import Calendar, PeriodKind
from stream.engine.periods import END_OF_TIME_MS, utc_rfc3339_ms
from tests.reference import period_label, period_range

zones = st.sampled_from(
    ["UTC", "Europe/Paris", "America/New_York", "Asia/Kathmandu", "Australia/Lord_Howe"]
)
instants = st.integers(0, 4_102_444_800_000)  # 1970 .. 2100


@given(zones, st.sampled_from(list(PeriodKind)), instants)
def test_period_of_matches_reference(zone, kind, instant):
    period = Calendar(zone).period_of(kind, instant)
    assert (period.start_ms, period.end_ms) == period_range(kind.value, instant, zone)
    assert period.label == period_label(kind.value, instant, zone)
    assert period.contains(instant)


def test_iso_week_labels_across_a_year_end():
    period = Calendar().period_of(PeriodKind.WEEK, 1_546_214_400_000)  # Mon 2018-12-31
    assert period.label == "2019-W01"


# Year 1 to year 9999, every instant RFC 3339 can write.
writable = st.integers(-62_135_596_800_000, 253_402_300_799_999)


@given(st.one_of(writable, instants, st.integers(0, 86_400_000)))
def test_the_fast_utc_format_is_the_calendars_character_for_character(instant):
    assert utc_rfc3339_ms(instant) == Calendar("UTC").to_rfc3339_ms(instant)


# The last instant accepted is 9999-12-31T23:59:59.999Z; past it, ``date`` ends (and, east
# of UTC, already ended) before the calendar's last periods do.
the_last_weeks = st.integers(END_OF_TIME_MS - 40 * 86_400_000, END_OF_TIME_MS - 1)
every_zone = zones | st.sampled_from(["Pacific/Kiritimati", "Etc/GMT+12", "Asia/Tokyo"])


@given(every_zone, st.sampled_from(list(PeriodKind)), st.one_of(the_last_weeks, instants))
def test_periods_follow_one_another_up_to_the_end_of_time(zone, kind, instant):
    calendar = Calendar(zone)
    period = calendar.period_of(kind, instant)
    assert period.contains(instant)
    assert calendar.previous(period).end_ms == period.start_ms
    if period.end_ms == END_OF_TIME_MS:  # the last one, which the reference cannot end
        assert period.label == period_label(kind.value, period.start_ms, zone)
        last_day = calendar.period_of(PeriodKind.DAY, END_OF_TIME_MS - 1)
        assert period.contains(last_day.start_ms)  # it holds the zone's 9999-12-31
        with pytest.raises(ValueError, match="end of time"):
            calendar.next(period)
    else:
        assert (period.start_ms, period.end_ms) == period_range(kind.value, instant, zone)
        assert period.label == period_label(kind.value, instant, zone)
        assert calendar.next(period).start_ms == period.end_ms


@pytest.mark.parametrize("zone", ["UTC", "Pacific/Kiritimati", "Etc/GMT+12"])
def test_the_last_periods_end_where_accepted_time_ends(zone):
    """9999-12-31T23:59:59.999Z is 9999-12-31 at noon west of UTC and already 10000-01-01
    in Kiritimati (UTC+14): everywhere it falls in the calendar's last day, week and month,
    whose end RFC 3339 cannot write and ``rcr compute`` prints as that last instant."""
    calendar = Calendar(zone)
    for kind, label in [
        (PeriodKind.DAY, "9999-12-31"),
        (PeriodKind.WEEK, "9999-W52"),
        (PeriodKind.MONTH, "9999-12"),
    ]:
        period = calendar.period_of(kind, END_OF_TIME_MS - 1)
        assert (period.label, period.end_ms) == (label, END_OF_TIME_MS)
        assert calendar.to_rfc3339(period.end_ms) == "9999-12-31T23:59:59.999Z"
    week = calendar.period_of(PeriodKind.WEEK, END_OF_TIME_MS - 1)
    assert calendar.to_rfc3339(week.start_ms).startswith("9999-12-27T00:00:00")
    with pytest.raises(ValueError, match="end of time"):
        calendar.period_of(PeriodKind.DAY, END_OF_TIME_MS)
