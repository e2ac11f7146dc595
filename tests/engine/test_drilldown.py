"""Bursts and repeat reasons: the drill-down behind a spike."""

from __future__ import annotations

from stream.engine import CustomerTimeline, Figures
from stream.engine.drilldown import Burst, bursts_since, repeat_reasons

MINUTE = 60_000


def timeline(*minutes: int) -> CustomerTimeline:
    return CustomerTimeline((m * MINUTE, f"k{m}", "chat", "login", ()) for m in minutes)


def bursts(*minutes: int, since: int = 0) -> list[int]:
    found = bursts_since("c", timeline(*minutes), 3, 30 * MINUTE, since * MINUTE)
    return [burst.at_ms // MINUTE for burst in found]


def test_a_burst_is_reported_at_the_contact_that_crosses_the_threshold():
    assert bursts(0, 10) == []
    assert bursts_since("c", timeline(0, 10, 29), 3, 30 * MINUTE, 0) == [
        Burst("c", 3, 30 * MINUTE, 29 * MINUTE, "chat", "login")
    ]
    assert bursts(0, 10, 30) == []  # 0 is out of (0, 30]
    assert bursts(0, 10, 28, 29) == [28]  # one burst, not one per contact
    assert bursts(0, 10, 28, 100, 110, 120) == [28, 120]
    assert bursts(0, 10, 28, 100, 110, 120, since=50) == [120]


def test_reasons_are_ranked_by_repeat_rate_with_the_previous_period():
    today = {
        ("all", "all"): Figures(10, 8, 3, 2),
        ("all", "login"): Figures(4, 2, 2, 2),
        ("all", "billing"): Figures(6, 6, 1, 0),
        ("all", "refund"): Figures(0, 0, 0, 0),
        ("chat", "all"): Figures(10, 8, 3, 2),
    }
    yesterday = {("all", "login"): Figures(2, 2, 0, 0)}
    trends = repeat_reasons(today, yesterday, limit=5)
    assert [t.reason for t in trends] == ["login", "billing"]
    assert trends[0].repeat_contact_rate == 1.0 and trends[0].previous_rate == 0.0
    assert trends[1].previous_rate is None
    assert len(repeat_reasons(today, yesterday, limit=1)) == 1
