"""A deliberately naive reference for every figure, written from the contract's words.

No incremental state, no indexes, no pruning: it keeps every accepted contact and answers
each question by brute force. The engine must agree with it exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

DAY_MS = 86_400_000


@dataclass
class Contact:
    customer_id: str
    contact_id: str  # for a chain: CHAIN_MARK + chain id, which orders same-time contacts
    timestamp_ms: int
    channel: str
    reason: str
    chain: str | None = None
    # Extra dimensions: name -> value (RCR_DIMENSIONS).
    dimensions: tuple[tuple[str, str], ...] = ()


CHAIN_MARK = "\x1echain:"
DIMENSION_MARK = "\x1d"


def matches(contact: Contact, label: tuple[str, str]) -> bool:
    """Whether a contact counts under a label: all, its channel, its reason, or its value
    in an extra dimension (labelled (DIMENSION_MARK + name, value))."""
    if label[0].startswith(DIMENSION_MARK):
        return (label[0][1:], label[1]) in contact.dimensions
    return label[0] in ("all", contact.channel) and label[1] in ("all", contact.reason)


def local(timestamp_ms: int, zone: str) -> datetime:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=timestamp_ms)).astimezone(
        ZoneInfo(zone)
    )


def midnight_ms(day: datetime, zone: str) -> int:
    start = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone))
    return round(start.timestamp() * 1000)


def period_range(kind: str, timestamp_ms: int, zone: str) -> tuple[int, int]:
    """[start, end) of the day / ISO week / month containing the instant, in ``zone``."""
    today = local(timestamp_ms, zone)
    if kind == "day":
        first, after = today, today + timedelta(days=1)
    elif kind == "week":
        first = today - timedelta(days=today.weekday())
        after = first + timedelta(days=7)
    else:
        first = today.replace(day=1)
        after = (first + timedelta(days=32)).replace(day=1)
    return midnight_ms(first, zone), midnight_ms(after, zone)


def period_label(kind: str, timestamp_ms: int, zone: str) -> str:
    moment = local(timestamp_ms, zone)
    if kind == "day":
        return moment.strftime("%Y-%m-%d")
    if kind == "week":
        year, week, _ = moment.isocalendar()
        return f"{year}-W{week:02d}"
    return moment.strftime("%Y-%m")


def repeat_flags(contacts: list[Contact], interval_ms: int) -> dict[str, bool]:
    """contact_id -> is a repeat: its predecessor in (timestamp, contact_id) order is close."""
    ordered = sorted(contacts, key=lambda c: (c.timestamp_ms, c.contact_id))
    flags = {}
    for index, contact in enumerate(ordered):
        previous = ordered[index - 1] if index else None
        flags[contact.contact_id] = (
            previous is not None and contact.timestamp_ms - previous.timestamp_ms <= interval_ms
        )
    return flags


def resolution(contacts: list[Contact], interval_ms: int, now_ms: int) -> dict[str, str]:
    """contact_id -> provisional while its interval has not passed at ``now``; then
    unresolved when the customer's next contact came within the interval, else resolved."""
    ordered = sorted(contacts, key=lambda c: (c.timestamp_ms, c.contact_id))
    statuses = {}
    for index, contact in enumerate(ordered):
        following = ordered[index + 1] if index + 1 < len(ordered) else None
        if now_ms - contact.timestamp_ms <= interval_ms:
            statuses[contact.contact_id] = "provisional"
        elif following and following.timestamp_ms - contact.timestamp_ms <= interval_ms:
            statuses[contact.contact_id] = "unresolved"
        else:
            statuses[contact.contact_id] = "resolved"
    return statuses


Figures7 = tuple[int, int, int, int, int, int, int]


def figures_in(
    contacts: list[Contact],
    start_ms: int,
    end_ms: int,
    interval_ms: int,
    now_ms: int,
    by_reason: bool = False,
) -> dict[tuple[str, str], Figures7]:
    """(contacts, customers, repeat_customers, repeat_contacts, resolved, unresolved,
    provisional) per label for [start, end); a contact's resolution counts under its own
    labels (what the follow-up was about does not matter). ``by_reason``: contacts match
    only contacts of the same customer about the same reason, and the unit counted as a
    "customer" is the customer's reason."""
    by_customer: dict[object, list[Contact]] = {}
    for contact in contacts:
        unit = (contact.customer_id, contact.reason) if by_reason else contact.customer_id
        by_customer.setdefault(unit, []).append(contact)
    result: dict[tuple[str, str], Figures7] = {}
    labels = {("all", "all")}
    labels |= {(c.channel, "all") for c in contacts} | {("all", c.reason) for c in contacts}
    labels |= {(DIMENSION_MARK + name, value) for c in contacts for name, value in c.dimensions}
    for label in labels:
        n_contacts = n_customers = n_repeat_customers = n_repeats = 0
        statuses = {"resolved": 0, "unresolved": 0, "provisional": 0}
        for own in by_customer.values():
            flags = repeat_flags(own, interval_ms)
            own_statuses = resolution(own, interval_ms, now_ms)
            inside = [c for c in own if start_ms <= c.timestamp_ms < end_ms and matches(c, label)]
            n_contacts += len(inside)
            n_customers += len(inside) >= 1
            n_repeat_customers += len(inside) >= 2
            n_repeats += sum(flags[c.contact_id] for c in inside)
            for c in inside:
                statuses[own_statuses[c.contact_id]] += 1
        if n_contacts:
            result[label] = (
                n_contacts,
                n_customers,
                n_repeat_customers,
                n_repeats,
                statuses["resolved"],
                statuses["unresolved"],
                statuses["provisional"],
            )
    return result


@dataclass
class NaiveModel:
    """The live semantics: acceptance rules, then figures by brute force."""

    windows: dict[str, int]
    interval_ms: int
    skew_ms: int
    zone: str
    max_labels: int
    wall_ms: int
    newest_ms: int | None = None
    accepted: list[Contact] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    dimension_names: tuple[str, ...] = ()
    dimension_values: dict[str, list[str]] = field(default_factory=dict)

    @property
    def now_ms(self) -> int:
        return max(self.wall_ms, self.newest_ms or 0)

    def advance(self, wall_ms: int) -> None:
        self.wall_ms = max(self.wall_ms, wall_ms)

    def ingest(
        self,
        customer: str,
        contact_id: str,
        ts: int,
        channel: str,
        reason: str,
        inbound: bool,
        chain: str | None = None,
        dimensions: tuple[str, ...] = (),
    ) -> str:
        if not inbound:
            return "ignored"
        if ts > self.wall_ms + self.skew_ms:
            return "too_far_in_future"
        now = max(self.now_ms, ts)
        in_longest_window = ts > now - max(self.windows.values())
        previous_month_start = period_range(
            "month", period_range("month", now, self.zone)[0] - 1, self.zone
        )[0]
        if not in_longest_window and ts < previous_month_start:
            return "too_late"
        # Duplicates and further legs of a chain are not counted, and do not move now.
        values = dict(zip(self.dimension_names, dimensions, strict=False))
        wanted = tuple((name, values.get(name, "unknown")) for name in self.dimension_names)
        if chain is not None:
            return self._leg(customer, ts, channel, reason, chain, wanted)
        if any(
            c.customer_id == customer and c.contact_id == contact_id and c.chain is None
            for c in self.accepted
        ):
            return "duplicate"
        self.newest_ms = ts if self.newest_ms is None else max(self.newest_ms, ts)
        self._add(customer, contact_id, ts, channel, reason, None, wanted)
        return "accepted"

    def _leg(
        self,
        customer: str,
        ts: int,
        channel: str,
        reason: str,
        chain: str,
        dimensions: tuple[tuple[str, str], ...],
    ) -> str:
        """A chain counts once, under its first leg by (timestamp, channel, reason, extra
        dimension values)."""
        counted = [c for c in self.accepted if c.customer_id == customer and c.chain == chain]
        if counted:
            first = counted[0]
            leg = (
                ts,
                self._peek(self.channels, channel),
                self._peek(self.reasons, reason),
                tuple(
                    self._peek(self.dimension_values.setdefault(name, []), value)
                    for name, value in dimensions
                ),
            )
            kept = (
                first.timestamp_ms,
                first.channel,
                first.reason,
                tuple(value for _, value in first.dimensions),
            )
            if leg == kept:
                return "duplicate"
            if leg < kept:
                self.accepted.remove(first)
                self._add(customer, CHAIN_MARK + chain, ts, channel, reason, chain, dimensions)
            return "chained"
        self.newest_ms = ts if self.newest_ms is None else max(self.newest_ms, ts)
        self._add(customer, CHAIN_MARK + chain, ts, channel, reason, chain, dimensions)
        return "accepted"

    def _add(
        self,
        customer: str,
        contact_id: str,
        ts: int,
        channel: str,
        reason: str,
        chain: str | None,
        dimensions: tuple[tuple[str, str], ...],
    ) -> None:
        """Count a contact, its labels folded as the engine folds them."""
        channel = self._fold(self.channels, channel)
        reason = self._fold(self.reasons, reason)
        folded = self._fold_dimensions(dimensions)
        self.accepted.append(Contact(customer, contact_id, ts, channel, reason, chain, folded))

    def _fold_dimensions(
        self, dimensions: tuple[tuple[str, str], ...]
    ) -> tuple[tuple[str, str], ...]:
        return tuple(
            (name, self._fold(self.dimension_values.setdefault(name, []), value))
            for name, value in dimensions
        )

    def _peek(self, admitted: list[str], value: str) -> str:
        """What ``_fold`` would give, admitting nothing."""
        if value in admitted or len(admitted) < self.max_labels:
            return value
        return "other"

    def _fold(self, admitted: list[str], value: str) -> str:
        if value in admitted:
            return value
        if len(admitted) < self.max_labels:
            admitted.append(value)
            return value
        return "other"

    def figures(
        self, interval_ms: int | None = None, by_reason: bool = False
    ) -> dict[str, dict[tuple[str, str], Figures7]]:
        """Every window's figures, under the model's definition or the one given."""
        interval = self.interval_ms if interval_ms is None else interval_ms
        now = self.now_ms
        ranges = {name: (now - length + 1, now + 1) for name, length in self.windows.items()}
        for kind in ("day", "week", "month"):
            start, end = period_range(kind, now, self.zone)
            ranges[kind] = (start, end)
        for kind in ("day", "week", "month"):
            start, _ = ranges[kind]
            ranges[f"previous_{kind}"] = period_range(kind, start - 1, self.zone)
        return {
            name: figures_in(self.accepted, start, end, interval, now, by_reason)
            for name, (start, end) in ranges.items()
        }
