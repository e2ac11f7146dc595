"""One engine per assigned partition: what a worker knows, partition by partition.

Customers are partitioned by key, so a partition's engine is self-contained: it can be
dropped when the partition is revoked, rebuilt from the table when it is assigned, and
its figures published for the cluster-wide rates without double counting.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from stream.engine import CustomerTimeline, Engine, EngineConfig, Figures, Label
from stream.engine.definitions import Definition, headline_at

WindowFigures = dict[str, dict[Label, Figures]]
# Figures of every repeat definition, by definition name.
DefinitionFigures = dict[str, WindowFigures]


class PartitionEngines:
    def __init__(self, config: EngineConfig, clock_ms: int) -> None:
        self.config = config
        self.clock_ms = clock_ms
        self.engines: dict[int, Engine] = {}

    def __iter__(self) -> Iterator[tuple[int, Engine]]:
        return iter(sorted(self.engines.items()))

    def engine(self, partition: int) -> Engine | None:
        """The partition's engine; None when the partition is not (or no longer) ours."""
        return self.engines.get(partition)

    def restore(self, partition: int, timelines: Mapping[str, CustomerTimeline]) -> Engine:
        """Replace a partition's engine by one rebuilt from its stored timelines."""
        engine = Engine(self.config, now_ms=self.clock_ms, customers=dict(timelines))
        engine.rebuild()
        self.engines[partition] = engine
        return engine

    def drop(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            self.engines.pop(partition, None)

    def advance(self, wall_ms: int) -> None:
        self.clock_ms = max(self.clock_ms, wall_ms)
        for engine in self.engines.values():
            engine.advance(wall_ms)

    def figures(self) -> WindowFigures:
        """This worker's figures: the sum over its partitions."""
        return sum_figures(engine.figures() for engine in self.engines.values())

    def definition_figures(self) -> DefinitionFigures:
        """This worker's figures under every definition."""
        return sum_definition_figures(e.definition_figures() for e in self.engines.values())

    def headline(self) -> Definition:
        """The definition the contract's metrics show now."""
        now = max((engine.now_ms for engine in self.engines.values()), default=self.clock_ms)
        return headline_at(self.config.all_definitions, now)

    def maturity(self) -> dict[str, dict[str, float]]:
        """Per definition and window, the share no longer provisional (any engine: the
        windows are the same on every partition, up to the partitions' newest events)."""
        newest = max(self.engines.values(), key=lambda engine: engine.now_ms, default=None)
        return {} if newest is None else newest.maturity()

    def find(self, customer_id: str) -> tuple[Engine, CustomerTimeline] | None:
        for engine in self.engines.values():
            timeline = engine.customers.get(customer_id)
            if timeline is not None:
                return engine, timeline
        return None

    @property
    def newest_event_ms(self) -> int | None:
        newest = [e.newest_event_ms for e in self.engines.values() if e.newest_event_ms]
        return max(newest, default=None)


def sum_figures(parts: Iterable[Mapping[str, Mapping[Label, Figures]]]) -> WindowFigures:
    total: WindowFigures = {}
    for part in parts:
        for window, by_label in part.items():
            into = total.setdefault(window, {})
            for label, figures in by_label.items():
                into[label] = into.get(label, Figures()) + figures
    return total


def sum_definition_figures(parts: Iterable[Mapping[str, WindowFigures]]) -> DefinitionFigures:
    by_definition: dict[str, list[WindowFigures]] = {}
    for part in parts:
        for definition, figures in part.items():
            by_definition.setdefault(definition, []).append(figures)
    return {name: sum_figures(figures) for name, figures in by_definition.items()}
