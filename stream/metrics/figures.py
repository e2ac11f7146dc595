"""The contract's figure gauges, read from a snapshot at scrape time.

A custom collector rather than ``Gauge.set`` per event: the hot path never touches a
metric, and every scrape sees one consistent snapshot of all windows and labels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from stream.engine import TOTAL, Figures, Label
from stream.engine.denominators import DenominatorValues, contacts_per

WindowFigures = Mapping[str, Mapping[Label, Figures]]
LABELS = ["window", "channel", "reason"]


@dataclass(frozen=True)
class FiguresSnapshot:
    """``local``: this worker's partitions; ``cluster``: every partition of the group."""

    local: WindowFigures = field(default_factory=dict)
    cluster: WindowFigures = field(default_factory=dict)
    customer_base: Mapping[str, float] = field(default_factory=dict)
    # Every window gets an all/all series, zero when empty: "No data" on a board should
    # mean a broken pipeline, never a quiet hour.
    windows: tuple[str, ...] = ()
    # RCR_DENOMINATORS by name; no values until the reader caught up with its topic.
    denominators: Mapping[str, DenominatorValues] = field(default_factory=dict)


_ADDITIVE = {
    "rcr_customers": (
        "customers",
        "Distinct customers with >= 1 inbound contact in the window, for this worker's partitions",
    ),
    "rcr_repeat_customers": (
        "repeat_customers",
        "Customers with >= 2 inbound contacts in the window, for this worker's partitions",
    ),
    "rcr_contacts": ("contacts", "Inbound contacts in the window, this worker's partitions"),
    "rcr_repeat_contacts": (
        "repeat_contacts",
        "Contact-level repeats in the window, this worker's partitions",
    ),
}


class FiguresCollector(Collector):
    def __init__(self, snapshot: Callable[[], FiguresSnapshot]) -> None:
        self._snapshot = snapshot

    def describe(self) -> list[GaugeMetricFamily]:
        # Declared up front so the registry can reject name clashes at registration.
        return list(self._families().values())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        snapshot = self._snapshot()
        local = _with_every_window(snapshot.local, snapshot.windows)
        cluster = _with_every_window(snapshot.cluster, snapshot.windows)
        families = self._families()
        for name, (attribute, _) in _ADDITIVE.items():
            for (window, channel, reason), figures in _series(local):
                families[name].add_metric([window, channel, reason], getattr(figures, attribute))
        for (window, channel, reason), figures in _series(cluster):
            families["rcr_repeat_contact_rate"].add_metric(
                [window, channel, reason], figures.repeat_contact_rate
            )
        base = snapshot.customer_base.get("all")
        for window, by_label in cluster.items():
            contacts = by_label.get(TOTAL, Figures()).contacts
            families["rcr_contact_rate"].add_metric(
                [window, "all", "all"], contacts / base if base else math.nan
            )
        for segment, value in sorted(snapshot.customer_base.items()):
            families["rcr_customer_base"].add_metric([segment], value)
        _add_denominators(families, snapshot.denominators, cluster)
        yield from families.values()

    @staticmethod
    def _families() -> dict[str, GaugeMetricFamily]:
        families = {
            name: GaugeMetricFamily(name, help_text, labels=LABELS)
            for name, (_, help_text) in _ADDITIVE.items()
        }
        families["rcr_repeat_contact_rate"] = GaugeMetricFamily(
            "rcr_repeat_contact_rate",
            "Cluster-wide repeat_customers / customers (NaN when 0/0)",
            labels=LABELS,
        )
        families["rcr_contact_rate"] = GaugeMetricFamily(
            "rcr_contact_rate",
            "Cluster-wide contacts / active customer base (NaN without a base)",
            labels=LABELS,
        )
        families["rcr_customer_base"] = GaugeMetricFamily(
            "rcr_customer_base", "Latest active customer base", labels=["segment"]
        )
        families["rcr_denominator"] = GaugeMetricFamily(
            "rcr_denominator",
            "Cluster-wide events of a count denominator in the window, or the latest value "
            'of a snapshot denominator (window="latest")',
            labels=["name", "window"],
        )
        families["rcr_contacts_per_denominator"] = GaugeMetricFamily(
            "rcr_contacts_per_denominator",
            "Cluster-wide contacts (all channels and reasons) in the window / the denominator "
            "(NaN when 0 or not known yet)",
            labels=["name", "window"],
        )
        return families


def _add_denominators(
    families: dict[str, GaugeMetricFamily],
    denominators: Mapping[str, DenominatorValues],
    cluster: WindowFigures,
) -> None:
    contacts = {
        window: by_label.get(TOTAL, Figures()).contacts for window, by_label in cluster.items()
    }
    for name, denominator in sorted(denominators.items()):
        for window, value in denominator.values.items():
            families["rcr_denominator"].add_metric([name, window], value)
        for window, ratio in contacts_per(denominator, contacts).items():
            families["rcr_contacts_per_denominator"].add_metric([name, window], ratio)


def _series(figures: WindowFigures) -> Iterator[tuple[tuple[str, str, str], Figures]]:
    for window, by_label in figures.items():
        for (channel, reason), value in by_label.items():
            yield (window, channel, reason), value


def _with_every_window(figures: WindowFigures, windows: tuple[str, ...]) -> WindowFigures:
    complete = {window: dict(figures.get(window, {})) for window in windows}
    for by_label in complete.values():
        by_label.setdefault(TOTAL, Figures())
    return {**figures, **complete}
