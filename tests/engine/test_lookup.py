"""The lookup hash against a brute-force count, on random timelines."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from stream.engine.lookup import Lookups
from stream.engine.timeline import CustomerTimeline

NOW = 1_763_900_000_000
HOUR = 3_600_000
WINDOWS = {"1h": HOUR, "24h": 24 * HOUR, "7d": 168 * HOUR}
BURST = (3, HOUR)


@settings(max_examples=300, deadline=None)
@given(
    offsets=st.lists(st.integers(0, 10 * 24 * HOUR), max_size=8),
    interval=st.sampled_from([1, HOUR, 24 * HOUR]),
)
def test_counts_per_window_are_the_brute_force_ones(offsets, interval):
    timeline = CustomerTimeline(
        (NOW - offset, f"k{i}", "chat", "billing", ()) for i, offset in enumerate(offsets)
    )
    fields = Lookups(WINDOWS, interval, BURST).fields(timeline, NOW)
    times = [contact[0] for contact in timeline.contacts]
    for name, length in WINDOWS.items():
        inside = [i for i, ts in enumerate(times) if ts > NOW - length]
        repeats = [i for i in inside if i > 0 and times[i] - times[i - 1] <= interval]
        assert fields[f"contacts_{name}"] == str(len(inside))
        assert fields[f"repeat_contacts_{name}"] == str(len(repeats))
