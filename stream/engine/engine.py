"""The incremental engine: contact events in, exact figures per window out. No I/O.

Per-customer state is a ``CustomerTimeline`` in ``customers`` (a dict here, the Faust
table in the worker). Window figures are running sums of what each customer contributes
(its *tally*). Whenever a customer or a window boundary moves, the engine subtracts the
customer's old tally and adds the new one, so every figure stays exact at O(contacts of
that customer in the window) per change, and the figures can always be rebuilt from the
timelines alone (``rebuild``), which is what a worker does after taking over partitions.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from stream.durations import parse_duration_ms
from stream.engine.definitions import Definition, MatchingKey, headline_at
from stream.engine.events import ContactEvent, Outcome, Rejection, RejectReason
from stream.engine.expiry import ExpiryIndex
from stream.engine.figures import Figures, WindowFigures
from stream.engine.labels import UNKNOWN, DimensionFolder, LabelFolder
from stream.engine.periods import Calendar, Period, PeriodKind
from stream.engine.rebuild import LabelFamily, TimelineColumns, WindowTally, numbered
from stream.engine.timeline import (
    ALL,
    TOTAL,
    Contact,
    CustomerTimeline,
    Label,
    Status,
    dimension_of,
    labels_of,
)

if TYPE_CHECKING:
    from stream.settings import Settings

DEFAULT_WINDOWS = "1h,24h,7d,30d"
DEFAULT_DEFINITION = "default"
# Stored in place of a contact id for a chain's counted leg; no sane contact id starts so.
CHAIN_MARK = "\x1echain:"
# Later than any timestamp: when no period ends.
NEVER_ENDS = 1 << 62


@dataclass(frozen=True)
class EngineConfig:
    windows: Mapping[str, int] = field(
        default_factory=lambda: {
            name: parse_duration_ms(name) for name in DEFAULT_WINDOWS.split(",")
        }
    )
    repeat_interval_ms: int = parse_duration_ms("7d")
    max_clock_skew_ms: int = parse_duration_ms("5m")
    timezone: str = "UTC"
    max_label_values: int = 20
    # Empty: one definition, ``default``, matching by customer at ``repeat_interval_ms``.
    definitions: tuple[Definition, ...] = ()
    # Extra label dimensions beside channel and reason (event fields, e.g. "queue").
    dimensions: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> EngineConfig:
        return cls(
            windows=dict(settings.window_ms),
            repeat_interval_ms=settings.repeat_interval_ms,
            max_clock_skew_ms=settings.max_clock_skew_ms,
            timezone=settings.timezone,
            max_label_values=settings.max_label_values,
            definitions=settings.repeat_definitions,
            dimensions=settings.dimension_names,
        )

    @property
    def all_definitions(self) -> tuple[Definition, ...]:
        return self.definitions or (
            Definition(DEFAULT_DEFINITION, MatchingKey.CUSTOMER, self.repeat_interval_ms),
        )

    def counts_for(self, definition: Definition) -> bool:
        """Whether this engine's own timelines and figures are the definition's."""
        return (
            definition.matching_key is MatchingKey.CUSTOMER
            and definition.repeat_interval_ms == self.repeat_interval_ms
        )

    def for_definition(self, definition: Definition) -> EngineConfig:
        """The config of an engine counting ``definition`` over units it is handed.

        Its label values arrive folded already, so it never folds again on its own.
        """
        return replace(
            self,
            repeat_interval_ms=definition.repeat_interval_ms,
            max_label_values=sys.maxsize,
            definitions=(replace(definition, matching_key=MatchingKey.CUSTOMER),),
        )


class Window:
    """A named range ``[start_ms, end_ms)`` of event time (``end_ms=None``: open), with figures."""

    __slots__ = ("end_ms", "figures", "name", "start_ms")

    def __init__(self, name: str, start_ms: int, end_ms: int | None) -> None:
        self.name = name
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.figures = WindowFigures()

    def contains(self, timestamp_ms: int) -> bool:
        return self.start_ms <= timestamp_ms and (self.end_ms is None or timestamp_ms < self.end_ms)

    def maturity(self, now_ms: int, repeat_interval_ms: int) -> float:
        """Share of the window's elapsed span whose contacts are no longer provisional.

        1.0 for a window wholly older than the interval, 0.0 for one wholly younger: a
        low value says the resolution figures of the window are still mostly open.
        """
        end = now_ms + 1 if self.end_ms is None else min(self.end_ms, now_ms + 1)
        if end <= self.start_ms:
            return 1.0  # a period in the future holds nothing open
        matured_until = min(end, now_ms - repeat_interval_ms)
        return max(0, matured_until - self.start_ms) / (end - self.start_ms)


class Engine:
    def __init__(
        self,
        config: EngineConfig,
        now_ms: int,
        customers: MutableMapping[str, CustomerTimeline] | None = None,
    ) -> None:
        self.config = config
        self.customers: MutableMapping[str, CustomerTimeline] = (
            {} if customers is None else customers
        )
        self.calendar = Calendar(config.timezone)
        self.channels = LabelFolder(config.max_label_values)
        self.reasons = LabelFolder(config.max_label_values)
        self.dimensions = [
            DimensionFolder(name, config.max_label_values) for name in config.dimensions
        ]
        self._dimension_combinations: dict[tuple[Label, ...], tuple[Label, ...]] = {}
        # Stored combinations (as read back from the changelog) -> the shared ones.
        self._restored: dict[tuple[Label, ...], tuple[Label, ...]] = {}
        self.expiry = ExpiryIndex()
        # Customers whose state (and so lookup) changed since the last ``take_changed``.
        self.changed: set[str] = set()
        self.newest_event_ms: int | None = None
        self._wall_ms = now_ms
        # The windows, and the statuses they count, are as of ``_now_ms``; ``_clock_ms``
        # (wall clock and newest event) runs ahead of it between reads (see ``_settle``).
        self._now_ms = now_ms
        self._clock_ms = now_ms
        self._longest_ms = max(config.windows.values())
        self.rolling = {
            name: Window(name, now_ms - length + 1, None) for name, length in config.windows.items()
        }
        self.current: dict[PeriodKind, Window] = {}
        self.previous: dict[PeriodKind, Window] = {}
        for kind in PeriodKind:
            period = self.calendar.period_of(kind, now_ms)
            self.current[kind] = _period_window(kind.value, period)
            self.previous[kind] = _period_window(
                f"previous_{kind.value}", self.calendar.previous(period)
            )
        self._windows = self._every_window()
        self._periods_end_ms = self._first_period_end()
        # Definitions this engine's own figures do not answer get an engine of their own,
        # fed the contacts this one accepts, keyed by their matching unit.
        self.lenses: list[tuple[Definition, Engine]] = [
            (definition, Engine(config.for_definition(definition), now_ms))
            for definition in config.all_definitions
            if not config.counts_for(definition)
        ]

    # -- time -------------------------------------------------------------------------

    @property
    def now_ms(self) -> int:
        """max(wall clock, newest event time): the end of every rolling window."""
        self._settle()
        return self._now_ms

    @property
    def retention_start_ms(self) -> int:
        """Oldest event time still counted: longest rolling window or previous month."""
        self._settle()
        return self._retention_start(self._now_ms)

    def _retention_start(self, now_ms: int) -> int:
        return min(now_ms - self._longest_ms + 1, self.previous[PeriodKind.MONTH].start_ms)

    def advance(self, wall_ms: int) -> None:
        """Move the wall clock; windows expire even when no event arrives."""
        self._wall_ms = max(self._wall_ms, wall_ms)
        self._move_now(wall_ms)

    def _settle(self) -> None:
        """The windows to the clock, before anything reads them.

        Events move the clock, not the windows: each move would query the expiry index
        once per window for the few milliseconds it slid, a quarter of a live event's
        cost. Counting a contact against windows that lag the clock is exact all the same:
        a rolling window starting earlier holds the contact, and sliding it later removes
        whatever has left it, by the timelines as they are then; a status judged at the
        windows' now is provisional exactly where they count it so, and maturing moves it
        later. Only a period must open before its first contact (``_clock_to``).
        """
        self._move_now(self._clock_ms)

    def _clock_to(self, timestamp_ms: int) -> None:
        """An accepted event newer than the clock moves it."""
        if timestamp_ms > self._clock_ms:
            self._clock_ms = timestamp_ms
            if timestamp_ms >= self._periods_end_ms:
                self._move_now(timestamp_ms)

    def _move_now(self, target_ms: int) -> None:
        self._clock_ms = max(self._clock_ms, target_ms)
        if target_ms <= self._now_ms:
            return
        before = self._now_ms
        self._now_ms = target_ms
        # Statuses first, so contacts leaving a window below leave with the status that
        # the window counts them under at the new now.
        self._mature(before, target_ms)
        for name, window in self.rolling.items():
            length = self.config.windows[name]
            self._slide(window, before - length, target_ms - length)
        for kind in PeriodKind:
            self._roll_period(kind)
        self._forget_old_contacts()
        for _, lens in self.lenses:
            lens._move_now(target_ms)

    def _mature(self, before_ms: int, now_ms: int) -> None:
        """Contacts whose repeat interval has just passed stop being provisional."""
        interval = self.config.repeat_interval_ms
        # Provisional at ``before`` and not at ``now``: timestamps in [before - I, now - I).
        first_ms, stop_ms = before_ms - interval, now_ms - interval
        for customer_id in set(self.expiry.customers_between(first_ms - 1, stop_ms - 1)):
            timeline = self.customers.get(customer_id)
            if timeline is None:
                continue
            for index in range(timeline.index_from(first_ms), timeline.index_from(stop_ms)):
                contact = timeline.contact(index)
                status = timeline.status(index, now_ms, interval)
                for window in self._windows:
                    if window.contains(contact[0]):
                        for label in labels_of(contact):
                            window.figures.move(label, Status.PROVISIONAL, status)

    def _slide(self, window: Window, after_ms: int, until_ms: int) -> None:
        """Contacts in ``(after, until]`` leave the rolling window, oldest first."""
        leaving = set(self.expiry.customers_between(after_ms, until_ms))
        old_start, window.start_ms = window.start_ms, until_ms + 1
        interval = self.config.repeat_interval_ms
        now = self._now_ms
        for customer_id in leaving:
            timeline = self.customers.get(customer_id)
            if timeline is None:
                continue  # a lens unit emptied by a replaced chain leg: nothing to remove
            end = len(timeline)
            for index in range(timeline.index_from(old_start), timeline.index_from(until_ms + 1)):
                repeat = timeline.is_repeat(index, interval)
                status = timeline.status(index, now, interval)
                for label in labels_of(timeline.contact(index)):
                    after = timeline.count_upto_two(index + 1, end, label)
                    window.figures.remove_contact(label, after, repeat, status)
        self.changed |= leaving

    def _roll_period(self, kind: PeriodKind) -> None:
        current = self.current[kind]
        if current.end_ms is None or self._now_ms < current.end_ms:
            return
        period = self.calendar.period_of(kind, self._now_ms)
        previous = self.calendar.previous(period)
        if previous.start_ms == current.start_ms:
            current.name = f"previous_{kind.value}"
            self.previous[kind] = current  # its figures are final: no event is newer than now
        else:
            self.previous[kind] = _period_window(f"previous_{kind.value}", previous)
        # No contact is newer than the old now, so the new period starts empty.
        self.current[kind] = _period_window(kind.value, period)
        self._windows = self._every_window()
        self._periods_end_ms = self._first_period_end()

    def _first_period_end(self) -> int:
        """When the first of the current periods ends (and the next must open)."""
        ends = [window.end_ms for window in self.current.values() if window.end_ms is not None]
        return min(ends, default=NEVER_ENDS)

    def _forget_old_contacts(self) -> None:
        # Contacts older than retention minus the repeat interval can no longer be a counted
        # contact or the predecessor of one: dropping them changes no figure.
        horizon = self._retention_start(self._now_ms) - self.config.repeat_interval_ms
        for customer_id in self.expiry.drop_before(horizon):
            timeline = self.customers.get(customer_id)
            if timeline is None:
                continue
            timeline.prune(horizon)
            if not timeline:
                del self.customers[customer_id]
            self.changed.add(customer_id)

    # -- events -----------------------------------------------------------------------

    def ingest(self, event: ContactEvent) -> Outcome | Rejection:
        if not event.inbound:
            return Outcome.IGNORED
        timestamp = event.timestamp_ms
        if timestamp > self._wall_ms + self.config.max_clock_skew_ms:
            return Rejection(RejectReason.TOO_FAR_IN_FUTURE, "beyond the clock skew limit")
        # An event newer than the clock cannot be too late: it becomes the clock.
        clock = self._clock_ms
        if timestamp <= clock and timestamp < self._retention_start(clock):
            return Rejection(RejectReason.TOO_LATE, "older than the state retention")
        # One string object per customer, shared by the table key and the expiry index.
        customer_id = sys.intern(event.customer_id)
        timeline = self.customers.get(customer_id)
        if timeline is None:
            timeline = self.customers[customer_id] = CustomerTimeline()
        identity = contact_identity(event)
        stored = timeline.find(identity)
        if stored is not None:
            # Not counted again, so it does not move now either: a restart, which knows
            # only counted contacts, finds the same now.
            return self._another_leg(customer_id, timeline, stored, event)
        self._clock_to(timestamp)
        self._count(customer_id, timeline, self._contact(event, identity))
        return Outcome.ACCEPTED

    def _another_leg(
        self, customer_id: str, timeline: CustomerTimeline, index: int, event: ContactEvent
    ) -> Outcome:
        """A contact whose id, or chain, is counted already.

        A chain counts once, under its first leg: ``(timestamp, channel, reason)`` orders
        legs, so the same leg wins whatever order they arrive in.
        """
        counted = timeline.contact(index)
        if event.chain_id is None:
            return Outcome.DUPLICATE
        leg = (
            event.timestamp_ms,
            counted[1],
            self.channels.peek(event.channel),
            self.reasons.peek(event.reason),
            self._dimension_labels(event, DimensionFolder.peek),
        )
        if leg == counted:
            return Outcome.DUPLICATE
        if leg < counted:
            self._uncount(customer_id, timeline, index)
            self._count(customer_id, timeline, self._contact(event, counted[1]))
        return Outcome.CHAINED

    def _contact(self, event: ContactEvent, identity: str) -> Contact:
        return (
            event.timestamp_ms,
            identity,
            self.channels.fold(event.channel),
            self.reasons.fold(event.reason),
            self._dimension_labels(event, DimensionFolder.fold),
        )

    def _dimension_labels(
        self, event: ContactEvent, fold: Callable[[DimensionFolder, str], Label]
    ) -> tuple[Label, ...]:
        if not self.dimensions:
            return ()
        values = event.dimensions
        labels = tuple(
            fold(folder, values[i] if i < len(values) else UNKNOWN)
            for i, folder in enumerate(self.dimensions)
        )
        return self._shared(labels)

    def _shared(self, labels: tuple[Label, ...]) -> tuple[Label, ...]:
        # One tuple per combination of values, shared by every contact that has it.
        return self._dimension_combinations.setdefault(labels, labels)

    def _count(self, customer_id: str, timeline: CustomerTimeline, contact: Contact) -> None:
        self._insert(customer_id, timeline, contact)
        for definition, lens in self.lenses:
            lens._accept(definition.unit_of(customer_id, contact[3]), contact)

    def _uncount(self, customer_id: str, timeline: CustomerTimeline, index: int) -> None:
        contact = timeline.contact(index)
        self._remove(customer_id, timeline, index)
        for definition, lens in self.lenses:
            unit = definition.unit_of(customer_id, contact[3])
            own = lens.customers[unit]
            lens._remove(unit, own, own.position(contact))
            if not own:
                del lens.customers[unit]

    def _accept(self, unit: str, contact: Contact) -> None:
        """A contact another engine accepted, counted here under its matching unit."""
        timeline = self.customers.get(unit)
        if timeline is None:
            timeline = self.customers[unit] = CustomerTimeline()
        self._insert(unit, timeline, contact)

    def _insert(self, customer_id: str, timeline: CustomerTimeline, contact: Contact) -> None:
        timestamp = contact[0]
        interval = self.config.repeat_interval_ms
        position = timeline.position(contact)
        previous = timeline.contact(position - 1) if position else None
        following = timeline.contact(position) if position < len(timeline) else None
        repeat = previous is not None and timestamp - previous[0] <= interval
        status = self._status_before(timestamp, following)
        # The follower's predecessor becomes this contact: it may turn into a repeat.
        successor = self._repeat_turning(previous, timestamp, following)
        # The predecessor's follow-up becomes this contact: a resolved one may turn
        # unresolved (a provisional one stays provisional until it matures).
        preceding = previous
        if preceding is not None and not (
            timestamp - preceding[0] <= interval
            and self._status_before(preceding[0], following) == Status.RESOLVED
        ):
            preceding = None
        if following is None:
            self._add_newest(timeline, contact, repeat, status)
        else:
            self._add_earlier(timeline, contact, repeat, status)
        self._neighbours_changed(successor, +1, preceding, Status.RESOLVED, Status.UNRESOLVED)
        timeline.insert_at(position, contact)
        self.expiry.add(timestamp, customer_id)
        self.changed.add(customer_id)
        if self.newest_event_ms is None or timestamp > self.newest_event_ms:
            self.newest_event_ms = timestamp

    def _add_newest(
        self, timeline: CustomerTimeline, contact: Contact, repeat: bool, status: int
    ) -> None:
        """A contact later than all of its customer's others enters the windows holding it.

        This is the per-event path of a live stream. Each window holding the contact holds
        the customer's contacts from the window's start to the end of the timeline, so how
        many the customer had there under a label follows from the label's two latest
        contacts: one backward scan per label serves every window.
        """
        timestamp = contact[0]
        windows = [
            window
            for window in self._windows
            if window.start_ms <= timestamp and (window.end_ms is None or timestamp < window.end_ms)
        ]  # Window.contains, inline: this runs for every window on every event
        if not windows:
            return
        labels = labels_of(contact)
        earliest = min(window.start_ms for window in windows)
        latest = [timeline.latest_two(label, earliest) for label in labels]
        for window in windows:
            window.figures.enter(labels, latest, window.start_ms, repeat, status)

    def _add_earlier(
        self, timeline: CustomerTimeline, contact: Contact, repeat: bool, status: int
    ) -> None:
        """A contact older than some of its customer's others (a late or reordered one)."""
        for window, label, before in self._counts_beside(timeline, contact):
            window.figures.add_contact(label, before, repeat, status)

    def _remove(self, customer_id: str, timeline: CustomerTimeline, index: int) -> None:
        """The exact inverse of ``_insert``: a counted contact leaves every figure."""
        interval = self.config.repeat_interval_ms
        contact = timeline.contact(index)
        timestamp = contact[0]
        previous = timeline.contact(index - 1) if index else None
        following = timeline.contact(index + 1) if index + 1 < len(timeline) else None
        repeat = previous is not None and timestamp - previous[0] <= interval
        status = self._status_before(timestamp, following)
        # The follower loses this predecessor: it may stop being a repeat.
        successor = self._repeat_turning(previous, timestamp, following)
        # The predecessor's follow-up becomes the follower: its status may change.
        preceding, old_status, new_status = previous, 0, 0
        if preceding is not None:
            old_status = self._status_before(preceding[0], contact)
            new_status = self._status_before(preceding[0], following)
            if old_status == new_status:
                preceding = None
        timeline.remove_at(index)
        for window, label, after in self._counts_beside(timeline, contact):
            window.figures.remove_contact(label, after, repeat, status)
        self._neighbours_changed(successor, -1, preceding, old_status, new_status)
        self.changed.add(customer_id)

    def _counts_beside(
        self, timeline: CustomerTimeline, contact: Contact
    ) -> Iterator[tuple[Window, Label, int]]:
        """Each window holding ``contact`` and each of its labels, with how many of the
        timeline's contacts (``contact`` not among them) count there: 0, 1, or 2 for more."""
        timestamp = contact[0]
        labels = labels_of(contact)
        for window in self._windows:
            if window.contains(timestamp):
                start, stop = timeline.indices(window.start_ms, window.end_ms)
                for label in labels:
                    yield window, label, timeline.count_upto_two(start, stop, label)

    def _neighbours_changed(
        self,
        successor: Contact | None,
        repeat_sign: int,
        preceding: Contact | None,
        old_status: int,
        new_status: int,
    ) -> None:
        """A contact inserted (+1) or removed (-1) between two others: ``successor``
        became (stopped being) a repeat, ``preceding``'s status moved; None when not."""
        if successor is None and preceding is None:
            return
        for window in self._windows:
            if successor is not None and window.contains(successor[0]):
                for label in labels_of(successor):
                    window.figures.add_repeat(label, repeat_sign)
            if preceding is not None and window.contains(preceding[0]):
                for label in labels_of(preceding):
                    window.figures.move(label, old_status, new_status)

    def _repeat_turning(
        self, previous: Contact | None, timestamp_ms: int, following: Contact | None
    ) -> Contact | None:
        """``following`` when a contact at ``timestamp_ms`` between ``previous`` and it
        decides whether it is a repeat (inserting that contact makes it one, removing it
        unmakes it); None otherwise."""
        interval = self.config.repeat_interval_ms
        if following is None or following[0] - timestamp_ms > interval:
            return None
        if previous is not None and following[0] - previous[0] <= interval:
            return None  # a repeat of ``previous`` anyway
        return following

    def _status_before(self, timestamp_ms: int, follow_up: Contact | None) -> int:
        """``CustomerTimeline.status`` of a contact at ``timestamp_ms``, then ``follow_up``."""
        interval = self.config.repeat_interval_ms
        if self._now_ms - timestamp_ms <= interval:
            return Status.PROVISIONAL
        if follow_up is not None and follow_up[0] - timestamp_ms <= interval:
            return Status.UNRESOLVED
        return Status.RESOLVED

    # -- state ------------------------------------------------------------------------

    def rebuild(self) -> None:
        """Recompute every figure and index from the timelines alone (after recovery).

        Counted over every contact at once, in columns (``stream.engine.rebuild``): a worker
        taking over partitions restores up to millions of customers."""
        for window in self.windows():
            window.figures.clear()
        self.expiry.clear()
        columns = TimelineColumns(self.customers)
        newest = columns.newest_ms
        if newest is not None:
            self.newest_event_ms = newest
            self._move_now(newest)
        horizon = self.retention_start_ms - self.config.repeat_interval_ms
        for customer_id in columns.prune(horizon):
            del self.customers[customer_id]
            self.changed.add(customer_id)
        families = self._label_families(columns)
        self.expiry.restore(columns.timestamp, columns.customer, columns.customer_ids)
        tally = WindowTally(columns, families, self.config.repeat_interval_ms, self._now_ms)
        for window in self.windows():
            window.figures.counters = tally.counters(window.start_ms, window.end_ms)
        for definition, lens in self.lenses:
            lens.customers = _units(self.customers, definition)
            lens.rebuild()

    def _label_families(self, columns: TimelineColumns) -> list[LabelFamily]:
        """The restored contacts' series, family by family (all, channel, reason, each extra
        dimension). Their values are remembered, and stored dimension labels become those of
        the dimensions configured now."""
        channels, channel_codes = columns.codes(2)
        reasons, reason_codes = columns.codes(3)
        stored, combination_codes = columns.codes(4)
        combinations = [self._remembered(labels) for labels in stored]
        columns.set_dimensions(combination_codes, stored, combinations)
        families = [
            LabelFamily.single(TOTAL, len(columns.timestamp)),
            LabelFamily([(self.channels.remember(v), ALL) for v in channels], channel_codes),
            LabelFamily([(ALL, self.reasons.remember(v)) for v in reasons], reason_codes),
        ]
        for position in range(len(self.dimensions)):
            labels, codes = numbered((c[position] for c in combinations), len(combinations))
            families.append(LabelFamily(labels, codes[combination_codes]))
        return families

    def _remembered(self, stored: tuple[Label, ...]) -> tuple[Label, ...]:
        """Stored dimension labels for the dimensions configured now: a dimension added
        since reads ``unknown``, one dropped is forgotten."""
        if not self.dimensions:
            return ()
        known = self._restored.get(stored)
        if known is None:  # once per distinct combination, not once per contact
            values = {dimension_of(label): label[1] for label in stored}
            labels = tuple(
                folder.remember(values.get(folder.name, UNKNOWN)) for folder in self.dimensions
            )
            # Unchanged, the stored tuple itself is shared: its contacts keep their tuples.
            known = self._restored[stored] = self._shared(stored if labels == stored else labels)
        return known

    def take_changed(self) -> set[str]:
        """Customers changed since the last call: what the table and Redis must write."""
        self._settle()  # it may forget old contacts
        changed, self.changed = self.changed, set()
        for _, lens in self.lenses:
            lens.changed.clear()  # their units are derived state: nothing to write
        return changed

    # -- figures ----------------------------------------------------------------------

    def windows(self) -> Iterator[Window]:
        """Every window, in the contract's order: rolling, to date, previous."""
        self._settle()
        return iter(self._windows)

    def _every_window(self) -> list[Window]:
        # Kept as a list (renewed when a period rolls): the per-event path walks it.
        return [*self.rolling.values(), *self.current.values(), *self.previous.values()]

    def figures(self) -> dict[str, dict[Label, Figures]]:
        """This engine's own figures (its timelines' definition)."""
        return {window.name: window.figures.snapshot() for window in self.windows()}

    def definition_figures(self) -> dict[str, dict[str, dict[Label, Figures]]]:
        """Every definition's figures, by definition name."""
        self._settle()  # the lenses move with this engine
        lenses = {definition.name: lens for definition, lens in self.lenses}
        return {
            definition.name: lenses.get(definition.name, self).figures()
            for definition in self.config.all_definitions
        }

    def maturity(self) -> dict[str, dict[str, float]]:
        """``Window.maturity`` of every window, by definition name."""
        self._settle()
        engines = {definition.name: lens for definition, lens in self.lenses}
        return {
            definition.name: {
                window.name: window.maturity(self._now_ms, definition.repeat_interval_ms)
                for window in engines.get(definition.name, self).windows()
            }
            for definition in self.config.all_definitions
        }

    def headline(self) -> Definition:
        """The definition the contract's metrics show now."""
        return headline_at(self.config.all_definitions, self.now_ms)


def contact_identity(event: ContactEvent) -> str:
    """What makes a contact counted already: its id, or for a leg of a chain, the chain."""
    return event.contact_id if event.chain_id is None else CHAIN_MARK + event.chain_id


def _units(
    customers: Mapping[str, CustomerTimeline], definition: Definition
) -> dict[str, CustomerTimeline]:
    """Customers' timelines regrouped by the definition's matching unit (sharing contacts)."""
    units: dict[str, list[Contact]] = {}
    for customer_id, timeline in customers.items():
        for contact in timeline.contacts:
            units.setdefault(definition.unit_of(customer_id, contact[3]), []).append(contact)
    return {unit: CustomerTimeline(contacts) for unit, contacts in units.items()}


def _period_window(name: str, period: Period) -> Window:
    return Window(name, period.start_ms, period.end_ms)
