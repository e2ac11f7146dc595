"""Valid contacts that stay out of every figure, and the outcome each one is counted under.

One pure decision, ``exclusion_of``, taken before the engine: by ``ContactProcessor`` on the
live path and before ``collect_timelines`` in ``rcr compute``, so both leave out the same
contacts. An excluded contact is not an error: it is counted in ``rcr_events_total`` under its
own outcome and never dead-lettered.

- **abandoned** / **short_abandoned**: the customer hung up before being served. The event
  says so in ``status`` (``abandoned``, or a vendor's ``abandoned_in_queue``...); a wait below
  the short-abandon threshold (``wait_time``), or ``status: short_abandoned``, makes it short.
  Which of them are left out is ``RCR_EXCLUDE_ABANDONED``: none (the default), short or all.
- **anonymous**: a contact nobody can be attributed to: ``customer_id`` null, blank, or one of
  the placeholders of ``RCR_ANONYMOUS_CUSTOMER_IDS`` (case-insensitive). Counted, it would
  merge strangers into one "customer" with an absurd repeat rate.

Abandonment is judged first, so an abandoned call from a withheld number is left out as
abandoned: identity coverage then compares the same population the figures count.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from stream.durations import parse_duration_ms
from stream.engine.events import ContactEvent, Outcome
from stream.engine.periods import Period

if TYPE_CHECKING:
    from stream.settings import Settings

# What suites and ETL hops write when they know no customer: withheld callers and chat
# guests (the first three), stringified nulls of Python, SQL/JSON and JavaScript, and "n/a".
# Real customer ids (numbers, UUIDs, e-mail addresses) never look like these.
DEFAULT_ANONYMOUS_CUSTOMER_IDS = "anonymous,unknown,guest,none,null,undefined,n/a"
DEFAULT_SHORT_ABANDON_THRESHOLD = "10s"
ABANDONED_STATUS = "abandoned"
SHORT_ABANDONED_STATUS = "short_abandoned"
# The outcomes an exclusion ends with, in the order rcr compute reports them.
EXCLUDED_OUTCOMES = (Outcome.ABANDONED, Outcome.SHORT_ABANDONED, Outcome.ANONYMOUS)


class AbandonedExclusion(StrEnum):
    """Which abandoned contacts are left out of the figures."""

    NONE = "none"
    SHORT = "short"
    ALL = "all"


_LEFT_OUT: dict[AbandonedExclusion, tuple[Outcome, ...]] = {
    AbandonedExclusion.NONE: (),
    AbandonedExclusion.SHORT: (Outcome.SHORT_ABANDONED,),
    AbandonedExclusion.ALL: (Outcome.SHORT_ABANDONED, Outcome.ABANDONED),
}


def parse_anonymous_ids(text: str) -> frozenset[str]:
    """``"Anonymous, guest"`` -> ``{"anonymous", "guest"}``: compared case-folded."""
    return frozenset(part.strip().casefold() for part in text.split(",") if part.strip())


@dataclass(frozen=True, slots=True)
class ExclusionPolicy:
    exclude_abandoned: AbandonedExclusion = AbandonedExclusion.NONE
    short_abandon_threshold_ms: int = parse_duration_ms(DEFAULT_SHORT_ABANDON_THRESHOLD)
    anonymous_customer_ids: frozenset[str] = field(
        default_factory=lambda: parse_anonymous_ids(DEFAULT_ANONYMOUS_CUSTOMER_IDS)
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> ExclusionPolicy:
        return cls(
            AbandonedExclusion(settings.exclude_abandoned),
            parse_duration_ms(settings.short_abandon_threshold),
            parse_anonymous_ids(settings.anonymous_customer_ids),
        )


def abandonment_of(event: ContactEvent, short_threshold_ms: int) -> Outcome | None:
    """``ABANDONED``, ``SHORT_ABANDONED`` or ``None`` (not abandoned), whatever the policy."""
    status = event.status
    if status == SHORT_ABANDONED_STATUS:
        return Outcome.SHORT_ABANDONED
    if status is None or not (
        status == ABANDONED_STATUS or status.startswith(ABANDONED_STATUS + "_")
    ):
        return None
    # Without a wait time nothing proves the abandon short: it counts as a long one.
    if event.wait_ms is not None and event.wait_ms < short_threshold_ms:
        return Outcome.SHORT_ABANDONED
    return Outcome.ABANDONED


def is_anonymous(customer_id: str, policy: ExclusionPolicy) -> bool:
    return not customer_id or customer_id.casefold() in policy.anonymous_customer_ids


def exclusion_of(event: ContactEvent, policy: ExclusionPolicy) -> Outcome | None:
    """The outcome a valid event ends with before the engine, or ``None`` to count it.

    Outbound contacts end ``ignored`` here, whoever the customer (the engine would say the
    same): they need no routing to their customer's partition.
    """
    if not event.inbound:
        return Outcome.IGNORED
    abandonment = abandonment_of(event, policy.short_abandon_threshold_ms)
    if abandonment in _LEFT_OUT[policy.exclude_abandoned]:
        return abandonment
    if is_anonymous(event.customer_id, policy):
        return Outcome.ANONYMOUS
    return None


def identity_coverage(linked: int, anonymous: int) -> float | None:
    """Share of the counted inbound contacts that carry a customer; ``None`` for 0/0."""
    total = linked + anonymous
    return linked / total if total else None


class ExcludedContacts:
    """``rcr compute``'s side: lets the counted contacts through, tallies the others.

    Like every contact of a batch, an excluded one counts once per (customer, contact_id).
    """

    def __init__(self, policy: ExclusionPolicy, period_of: Callable[[int], Period]) -> None:
        self.policy = policy
        self.period_of = period_of
        self._counts: defaultdict[Period, Counter[Outcome]] = defaultdict(Counter)
        self._seen: set[tuple[str, str]] = set()

    def admit(self, events: Iterable[ContactEvent]) -> Iterator[ContactEvent]:
        """The events the figures count (outbound ones are dropped: no figure counts them)."""
        for event in events:
            outcome = exclusion_of(event, self.policy)
            if outcome is None:
                yield event
            elif outcome is not Outcome.IGNORED:
                self._count(event, outcome)

    def _count(self, event: ContactEvent, outcome: Outcome) -> None:
        key = (event.customer_id, event.contact_id)
        if key not in self._seen:
            self._seen.add(key)
            self._counts[self.period_of(event.timestamp_ms)][outcome] += 1

    def in_period(self, period: Period) -> dict[str, int]:
        """Excluded contacts of one period by outcome, every outcome present."""
        counts = self._counts.get(period, Counter())
        return {outcome.value: counts[outcome] for outcome in EXCLUDED_OUTCOMES}
