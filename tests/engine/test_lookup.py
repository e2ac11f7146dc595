"""The lookup hash against a brute-force count, on random timelines."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from stream.engine.drilldown import bursts_since
from stream.engine.lookup import BURSTS_KEPT_MS, Lookups
from stream.engine.timeline import CustomerTimeline

NOW = 1_763_900_000_000
HOUR = 3_600_000
WINDOWS = {"1h": HOUR, "24h": 24 * HOUR, "7d": 168 * HOUR}
BURST = (3, HOUR)


@settings(max_examples=300, deadline=None)
@given(
    # Days apart, or hours apart (bursts).
    offsets=st.lists(st.integers(0, 10 * 24 * HOUR) | st.integers(0, 3 * HOUR), max_size=8),
    interval=st.sampled_from([1, HOUR, 24 * HOUR]),
)
def test_counts_per_window_are_the_brute_force_ones(offsets, interval):
    timeline = CustomerTimeline(
        (NOW - offset, f"k{i}", "chat", "billing", ()) for i, offset in enumerate(offsets)
    )
    view = Lookups(WINDOWS, interval, BURST).view("c", timeline, NOW)
    times = [contact[0] for contact in timeline.contacts]
    counts = []
    for name, length in WINDOWS.items():
        inside = [i for i, ts in enumerate(times) if ts > NOW - length]
        repeats = [i for i in inside if i > 0 and times[i] - times[i - 1] <= interval]
        assert view.fields[f"contacts_{name}"] == str(len(inside))
        assert view.fields[f"repeat_contacts_{name}"] == str(len(repeats))
        counts.append(len(inside))
    assert view.window_contacts == tuple(counts)
    assert view.contacts == len(times)
    # Customers with fewer contacts than a burst are not searched: nothing is missed.
    assert view.bursts == bursts_since("c", timeline, *BURST, NOW - BURSTS_KEPT_MS)
