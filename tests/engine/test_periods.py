"""Calendar periods against the naive reference, in zones with and without DST."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from stream.engine import Calendar, PeriodKind
from stream.engine.periods import utc_rfc3339_ms
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
