"""The live engine against the naive reference, on random event streams."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from stream.engine import (
    ContactEvent,
    CustomerTimeline,
    Engine,
    EngineConfig,
    Figures,
    Rejection,
)
from stream.engine.definitions import Definition, MatchingKey
from stream.engine.periods import Calendar, PeriodKind
from stream.engine.timeline import TimelineReader
from tests.reference import DAY_MS, NaiveModel

HOUR_MS = 3_600_000
MINUTE_MS = 60_000
# 2024-02-25T00:00Z: the runs cross a leap day, month ends and Europe's DST change.
BASE_MS = 1_708_819_200_000


@dataclass(frozen=True)
class NewContact:
    customer: str
    offset_ms: int  # relative to the wall clock at arrival
    channel: str
    reason: str
    inbound: bool
    chain: str | None  # legs of one contact chain share it
    queue: str


@dataclass(frozen=True)
class Redeliver:
    which: int  # index among the contacts sent so far (at-least-once redelivery)


@dataclass(frozen=True)
class Advance:
    by_ms: int


offsets = st.one_of(
    st.integers(-40 * DAY_MS, 10 * MINUTE_MS),
    st.sampled_from([0, -1, -HOUR_MS, -DAY_MS, -7 * DAY_MS, 5 * MINUTE_MS, 5 * MINUTE_MS + 1]),
    # Exactly at the start of a rolling window (``now - length + 1``) while now is the wall.
    st.sampled_from([-HOUR_MS + 1, -DAY_MS + 1, -7 * DAY_MS + 1]),
)
operations = st.lists(
    st.one_of(
        st.builds(
            NewContact,
            customer=st.sampled_from("abcde"),
            offset_ms=offsets,
            channel=st.sampled_from(["phone", "chat", "email"]),
            reason=st.sampled_from(["billing", "login", "delivery", "refund"]),
            inbound=st.booleans().map(lambda b: b or False) | st.just(True),
            chain=st.sampled_from([None, None, "x", "y"]),
            queue=st.sampled_from(["q1", "q2", "q3"]),
        ),
        st.builds(Redeliver, which=st.integers(0, 50)),
        st.builds(
            Advance,
            by_ms=st.one_of(
                st.integers(0, 3 * DAY_MS), st.sampled_from([1, HOUR_MS, DAY_MS, 8 * DAY_MS])
            ),
        ),
    ),
    max_size=50,
)
definitions = st.lists(
    st.builds(
        lambda key, interval: (key, interval),
        st.sampled_from(list(MatchingKey)),
        st.sampled_from([HOUR_MS, DAY_MS, 7 * DAY_MS]),
    ),
    max_size=2,
).map(lambda specs: tuple(Definition(f"d{i}", key, ms) for i, (key, ms) in enumerate(specs)))
configs = st.builds(
    lambda windows, interval, zone, labels, definitions, dimensions: EngineConfig(
        windows=windows,
        repeat_interval_ms=interval,
        timezone=zone,
        max_label_values=labels,
        definitions=definitions,
        dimensions=dimensions,
    ),
    windows=st.sampled_from(
        [
            {"1h": HOUR_MS, "24h": DAY_MS, "7d": 7 * DAY_MS, "30d": 30 * DAY_MS},
            {"1h": HOUR_MS, "2d": 2 * DAY_MS},
        ]
    ),
    interval=st.sampled_from([HOUR_MS, DAY_MS, 7 * DAY_MS]),
    zone=st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Asia/Kathmandu"]),
    labels=st.sampled_from([2, 20]),
    definitions=definitions,
    dimensions=st.sampled_from([(), ("queue",)]),
)


def nonzero(figures: dict[str, dict]) -> dict[str, dict]:
    """Engine figures without all-zero series, as plain tuples."""
    result = {}
    for window, by_label in figures.items():
        result[window] = {label: tuple(f) for label, f in by_label.items() if f != Figures()}
    return result


def outcome_name(outcome: object) -> str:
    return outcome.reason.value if isinstance(outcome, Rejection) else str(outcome)


@dataclass
class Replay:
    """An engine and the reference fed the same operations, compared after each one."""

    config: EngineConfig
    engine: Engine
    model: NaiveModel
    sent: list[ContactEvent] = field(default_factory=list)
    # Events reach the engine with their extra dimensions (else: without any).
    with_dimensions: bool = True

    @classmethod
    def start(cls, config: EngineConfig, start_ms: int, with_dimensions: bool = True) -> Replay:
        model = NaiveModel(
            dict(config.windows),
            config.repeat_interval_ms,
            config.max_clock_skew_ms,
            config.timezone,
            config.max_label_values,
            wall_ms=start_ms,
            dimension_names=config.dimensions,
        )
        return cls(config, Engine(config, now_ms=start_ms), model, with_dimensions=with_dimensions)

    def apply(self, ops: list, check_each: bool = True) -> Replay:
        """Feed ``ops`` to both; compare after each one, or (``check_each=False``) only at
        the end, so that the engine's windows lag its clock in between (``Engine._settle``)."""
        engine, model, sent = self.engine, self.model, self.sent
        for op in ops:
            wall = model.wall_ms
            if isinstance(op, Advance):
                engine.advance(wall + op.by_ms)
                model.advance(wall + op.by_ms)
            else:
                if isinstance(op, NewContact):
                    event = ContactEvent(
                        f"k{len(sent)}",
                        op.customer,
                        wall + (op.offset_ms if op.chain is None else max(op.offset_ms, -HOUR_MS)),
                        op.channel,
                        op.reason,
                        op.inbound,
                        # The legs of a chain come within a day, as transfers do: a chain is
                        # remembered for the state retention only (docs/METRICS.md), which
                        # the reference, keeping everything forever, does not model.
                        None if op.chain is None else f"{op.chain}@{wall // DAY_MS}",
                        (op.queue,) if self.with_dimensions else (),
                    )
                    sent.append(event)
                elif sent:
                    event = sent[op.which % len(sent)]
                else:
                    continue
                expected = model.ingest(
                    event.customer_id,
                    event.contact_id,
                    event.timestamp_ms,
                    event.channel,
                    event.reason,
                    event.inbound,
                    event.chain_id,
                    event.dimensions,
                )
                assert outcome_name(engine.ingest(event)) == expected
            if check_each:
                self.check()
        self.check()
        return self

    def check(self) -> None:
        engine, model = self.engine, self.model
        assert engine.now_ms == model.now_ms
        assert nonzero(engine.figures()) == model.figures()
        by_definition = engine.definition_figures()
        for definition in self.config.all_definitions:
            expected = model.figures(
                definition.repeat_interval_ms,
                by_reason=definition.matching_key is MatchingKey.CUSTOMER_REASON,
            )
            assert nonzero(by_definition[definition.name]) == expected, definition


def run(config: EngineConfig, start_ms: int, ops: list) -> tuple[Engine, NaiveModel]:
    replay = Replay.start(config, start_ms).apply(ops)
    return replay.engine, replay.model


def serialised(
    engine: Engine, dimensions: tuple[str, ...] | None = None
) -> dict[str, CustomerTimeline]:
    """The engine's timelines as the changelog brings them back (as the worker's bulk load
    reads them with ``dimensions``; None: as Faust's codec does)."""
    reader = TimelineReader(dimensions)
    return {
        customer: reader.read(timeline.to_bytes())
        for customer, timeline in engine.customers.items()
    }


def restored(
    engine: Engine, config: EngineConfig, dimensions: tuple[str, ...] | None = None
) -> Engine:
    """What a worker taking over ``engine``'s partition builds from the changelog, under
    ``config``, at the same wall clock and now."""
    customers = serialised(engine, dimensions)
    fresh = Engine(config, now_ms=engine._wall_ms, customers=customers)
    fresh.rebuild()
    # Now is the newest time counted or seen; a chain leg replaced by an earlier one can
    # have been seen (ahead of the wall clock, within the skew) and left no trace.
    assert fresh.now_ms <= engine.now_ms <= fresh.now_ms + config.max_clock_skew_ms
    fresh.advance(engine.now_ms)
    return fresh


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configs, start=st.integers(BASE_MS, BASE_MS + 40 * DAY_MS), ops=operations)
def test_every_figure_matches_the_naive_reference(config, start, ops):
    run(config, start, ops)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    config=configs,
    day=st.integers(0, 40),
    before_end=st.integers(0, 15 * MINUTE_MS),
    data=st.data(),
)
def test_figures_read_only_at_the_end_match_the_naive_reference(config, day, before_end, data):
    """Nothing reads the engine between events (as within one of the worker's batches):
    its windows lag its clock all along, and the figures still come out exact. Starting
    minutes before a day (or week, month) ends in the engine's time zone, contacts within
    the clock skew open the next period while the windows lag."""
    calendar = Calendar(config.timezone)
    day_end = calendar.period_of(PeriodKind.DAY, BASE_MS + day * DAY_MS).end_ms
    assert day_end is not None
    start = data.draw(st.sampled_from([day_end - before_end, BASE_MS + day * DAY_MS + before_end]))
    Replay.start(config, start).apply(data.draw(operations), check_each=False)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configs, start=st.integers(BASE_MS, BASE_MS + 40 * DAY_MS), ops=operations)
def test_figures_rebuilt_from_serialised_timelines_are_identical(config, start, ops):
    engine, _ = run(config, start, ops)
    fresh = restored(engine, config)
    assert nonzero(fresh.figures()) == nonzero(engine.figures())
    for name, figures in engine.definition_figures().items():
        assert nonzero(fresh.definition_figures()[name]) == nonzero(figures), name


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    config=configs,
    start=st.integers(BASE_MS, BASE_MS + 40 * DAY_MS),
    ops=operations,
    more=operations,
)
def test_a_rebuilt_engine_goes_on_counting_like_the_reference(config, start, ops, more):
    # Its expiry index, label folders and shared labels come from the rebuild. Below the
    # label limit, so that which values were admitted does not depend on what was pruned.
    config = replace(config, max_label_values=20)
    replay = Replay.start(config, start).apply(ops)
    written = replay.engine
    replay.engine = Engine(config, now_ms=written._wall_ms, customers=serialised(written))
    replay.engine.rebuild()
    # Same wall clock; now differs only after a chain leg seen ahead of it was replaced.
    assume(replay.engine.now_ms == written.now_ms)
    replay.check()
    replay.apply(more)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    config=configs,
    start=st.integers(BASE_MS, BASE_MS + 40 * DAY_MS),
    ops=operations,
    downtime=st.one_of(
        st.integers(0, 100 * DAY_MS),
        st.sampled_from([HOUR_MS, DAY_MS, 8 * DAY_MS, 30 * DAY_MS, 45 * DAY_MS, 70 * DAY_MS]),
    ),
)
def test_a_worker_restarting_later_rebuilds_what_the_clock_left(config, start, ops, downtime):
    # The stored timelines still hold what the clock has since moved out of every window
    # or past the retention: the rebuild prunes it and forgets emptied customers.
    engine, _ = run(config, start, ops)
    assume(engine.customers)
    later = engine._wall_ms + downtime
    fresh = Engine(config, now_ms=later, customers=serialised(engine))
    fresh.rebuild()
    horizon = fresh.retention_start_ms - config.repeat_interval_ms
    kept = {customer for customer, t in engine.customers.items() if t.contacts[-1][0] >= horizon}
    assert set(fresh.customers) == kept
    assert all(timeline.contacts[0][0] >= horizon for timeline in fresh.customers.values())
    engine.advance(later)
    fresh.advance(engine.now_ms)
    assert nonzero(fresh.figures()) == nonzero(engine.figures())
    for name, figures in engine.definition_figures().items():
        assert nonzero(fresh.definition_figures()[name]) == nonzero(figures), name


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configs, start=st.integers(BASE_MS, BASE_MS + 40 * DAY_MS), ops=operations)
def test_a_rebuild_reads_stored_labels_for_the_dimensions_configured_now(config, start, ops):
    # Timelines written with the queue dimension and read without it, or the other way
    # round (read as "unknown"): as if the contacts had come without that dimension.
    config = replace(config, max_label_values=20)
    now_configured = replace(config, dimensions=() if config.dimensions else ("queue",))
    written = Replay.start(config, start).apply(ops).engine
    expected = Replay.start(now_configured, start, with_dimensions=False).apply(ops).engine
    # Read as stored, the rebuild maps the labels; read for the dimensions, they come so.
    for read_for in (None, now_configured.dimensions):
        fresh = restored(written, now_configured, read_for)
        fresh.advance(expected.now_ms)
        assert nonzero(fresh.figures()) == nonzero(expected.figures())
        for name, figures in expected.definition_figures().items():
            assert nonzero(fresh.definition_figures()[name]) == nonzero(figures), name
        # Every contact shares the engine's one tuple of its combination of labels.
        shared = {id(labels) for labels in fresh._dimension_combinations.values()} | {id(())}
        assert all(id(c[4]) in shared for t in fresh.customers.values() for c in t.contacts)


@settings(max_examples=100, deadline=None)
@given(
    config=configs,
    start=st.integers(BASE_MS, BASE_MS + 40 * DAY_MS),
    events=st.lists(
        st.tuples(
            st.sampled_from("abc"),
            st.integers(-20 * DAY_MS, 0),
            st.sampled_from("xyz"),
            st.sampled_from([None, None, "chain1", "chain2"]),
        ),
        max_size=25,
    ),
    order=st.randoms(use_true_random=False),
)
def test_arrival_order_does_not_change_the_figures(config, start, events, order):
    # Label folding is first come, first served: order-free only below the limit.
    config = replace(config, max_label_values=20)
    contacts = [
        ContactEvent(f"k{i}", customer, start + offset, channel, "r", chain_id=chain)
        for i, (customer, offset, channel, chain) in enumerate(events)
    ]
    shuffled = list(contacts)
    order.shuffle(shuffled)
    results = []
    for stream in (contacts, shuffled + contacts[: len(contacts) // 2]):  # with duplicates
        engine = Engine(config, now_ms=start)
        for event in stream:
            engine.ingest(event)
        results.append(nonzero(engine.figures()))
    assert results[0] == results[1]


def test_a_customer_whose_earlier_contact_sits_on_a_window_start():
    """The newest-contact path counts a contact exactly at a window's start as inside."""
    config = EngineConfig(windows={"1h": HOUR_MS}, dimensions=("queue",))
    contact = NewContact("a", 0, "phone", "billing", True, None, "q1")
    on_the_start = replace(contact, offset_ms=-HOUR_MS + 1)
    between = replace(contact, offset_ms=-MINUTE_MS, channel="chat")
    # Half an hour into a Monday, 1 June: the day, week and month started after the 1h
    # window did, so that window's start is also where the backward scan stops.
    new_periods = 1_780_273_800_000  # 2026-06-01T00:30:00Z
    for start in (BASE_MS, new_periods):
        for ops in ([on_the_start, between, contact], [on_the_start, contact]):
            run(config, start, ops)
