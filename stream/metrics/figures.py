"""The contract's figure gauges, read from a snapshot at scrape time.

A custom collector rather than ``Gauge.set`` per event: the hot path never touches a
metric, and every scrape sees one consistent snapshot of all windows and labels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from stream.engine import TOTAL, Figures, Label
from stream.engine.denominators import DenominatorValues, contacts_per
from stream.engine.timeline import dimension_of

WindowFigures = Mapping[str, Mapping[Label, Figures]]
DefinitionFigures = Mapping[str, WindowFigures]
LABELS = ["window", "channel", "reason", "definition"]
DIMENSION_LABELS = ["window", "dimension", "value", "definition"]


@dataclass(frozen=True)
class FiguresSnapshot:
    """Figures by repeat definition. ``local``: this worker's partitions; ``cluster``:
    every partition of the group. ``headline`` names the definition the contract's
    families show; ``rcr_definition_*`` families show every definition when
    ``every_definition`` (several are configured)."""

    local: DefinitionFigures = field(default_factory=dict)
    cluster: DefinitionFigures = field(default_factory=dict)
    headline: str = "default"
    every_definition: bool = False
    customer_base: Mapping[str, float] = field(default_factory=dict)
    # Every window gets an all/all series, zero when empty: "No data" on a board should
    # mean a broken pipeline, never a quiet hour.
    windows: tuple[str, ...] = ()
    # Definition -> window -> share of the window no longer provisional.
    maturity: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    # Definition -> (matching key, repeat interval) for rcr_definition_info.
    definitions: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    # RCR_DENOMINATORS by name; no values until the reader caught up with its topic.
    denominators: Mapping[str, DenominatorValues] = field(default_factory=dict)


# Additive per-worker gauges: family name suffix -> (Figures attribute, help).
_ADDITIVE = {
    "customers": (
        "Distinct customers with >= 1 inbound contact in the window, for this worker's partitions"
    ),
    "repeat_customers": (
        "Customers with >= 2 inbound contacts in the window, for this worker's partitions"
    ),
    "contacts": "Inbound contacts in the window, this worker's partitions",
    "repeat_contacts": "Contact-level repeats in the window, this worker's partitions",
    "resolved_contacts": (
        "Contacts in the window whose repeat interval has passed with no follow-up,"
        " this worker's partitions"
    ),
    "unresolved_contacts": (
        "Contacts in the window whose repeat interval has passed and which a follow-up"
        " came within, by the first contact's labels, this worker's partitions"
    ),
    "provisional_contacts": (
        "Contacts in the window younger than the repeat interval, this worker's partitions"
    ),
}
# Cluster-wide ratios: family name suffix -> (Figures property, help).
_RATES = {
    "repeat_contact_rate": "Cluster-wide repeat_customers / customers (NaN when 0/0)",
    "first_contact_resolution_rate": (
        "Cluster-wide resolved / (resolved + unresolved) contacts (NaN when 0/0)"
    ),
}
# Contacts do not depend on the definition: no rcr_definition_contacts.
_PER_DEFINITION = [name for name in _ADDITIVE if name != "contacts"]


class FiguresCollector(Collector):
    def __init__(self, snapshot: Callable[[], FiguresSnapshot]) -> None:
        self._snapshot = snapshot

    def describe(self) -> list[GaugeMetricFamily]:
        # Declared up front so the registry can reject name clashes at registration.
        return list(self._families().values())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        snapshot = self._snapshot()
        families = self._families()
        headline = snapshot.headline
        local = _with_every_window(snapshot.local.get(headline, {}), snapshot.windows)
        cluster = _with_every_window(snapshot.cluster.get(headline, {}), snapshot.windows)
        _add_figures(families, "rcr_", _ADDITIVE, local, headline)
        _add_figures(families, "rcr_", _RATES, cluster, headline)
        base = snapshot.customer_base.get("all")
        for window, by_label in cluster.items():
            contacts = by_label.get(TOTAL, Figures()).contacts
            families["rcr_contact_rate"].add_metric(
                [window, "all", "all", headline], contacts / base if base else math.nan
            )
        for segment, value in sorted(snapshot.customer_base.items()):
            families["rcr_customer_base"].add_metric([segment], value)
        if snapshot.every_definition:
            for name in snapshot.definitions:
                mine = _with_every_window(snapshot.local.get(name, {}), snapshot.windows)
                ours = _with_every_window(snapshot.cluster.get(name, {}), snapshot.windows)
                _add_figures(families, "rcr_definition_", _PER_DEFINITION, mine, name)
                _add_figures(families, "rcr_definition_", _RATES, ours, name)
        _add_dimensions(families, local, cluster, headline)
        for name, windows in snapshot.maturity.items():
            for window, share in windows.items():
                families["rcr_resolution_maturity_ratio"].add_metric([window, name], share)
        for name, (matching_key, interval) in snapshot.definitions.items():
            families["rcr_definition_info"].add_metric(
                [name, matching_key, interval, str(name == headline).lower()], 1
            )
        _add_denominators(families, snapshot.denominators, cluster)
        yield from families.values()

    @staticmethod
    def _families() -> dict[str, GaugeMetricFamily]:
        families = {
            f"rcr_{name}": GaugeMetricFamily(f"rcr_{name}", help_text, labels=LABELS)
            for name, help_text in {**_ADDITIVE, **_RATES}.items()
        }
        for name in [*_PER_DEFINITION, *_RATES]:
            help_text = {**_ADDITIVE, **_RATES}[name]
            families[f"rcr_definition_{name}"] = GaugeMetricFamily(
                f"rcr_definition_{name}",
                f"{help_text}; every repeat definition, when several are configured",
                labels=LABELS,
            )
        for name, help_text in {**_ADDITIVE, **_RATES}.items():
            families[f"rcr_dimension_{name}"] = GaugeMetricFamily(
                f"rcr_dimension_{name}",
                f"{help_text}; per value of an extra dimension (RCR_DIMENSIONS)",
                labels=DIMENSION_LABELS,
            )
        families["rcr_contact_rate"] = GaugeMetricFamily(
            "rcr_contact_rate",
            "Cluster-wide contacts / active customer base (NaN without a base)",
            labels=LABELS,
        )
        families["rcr_customer_base"] = GaugeMetricFamily(
            "rcr_customer_base", "Latest active customer base", labels=["segment"]
        )
        families["rcr_resolution_maturity_ratio"] = GaugeMetricFamily(
            "rcr_resolution_maturity_ratio",
            "Share of the window's elapsed span older than the repeat interval: the part"
            " whose contacts are resolved or not, no longer provisional",
            labels=["window", "definition"],
        )
        families["rcr_definition_info"] = GaugeMetricFamily(
            "rcr_definition_info",
            "Repeat definitions configured; headline=true for the one the rcr_* figures show",
            labels=["definition", "matching_key", "repeat_interval", "headline"],
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


def _add_figures(
    families: dict[str, GaugeMetricFamily],
    prefix: str,
    names: Iterable[str],
    figures: WindowFigures,
    definition: str,
) -> None:
    for name in names:
        family = families[prefix + name]
        for (window, channel, reason), value in _series(figures):
            family.add_metric([window, channel, reason, definition], getattr(value, name))


def _add_dimensions(
    families: dict[str, GaugeMetricFamily],
    local: WindowFigures,
    cluster: WindowFigures,
    definition: str,
) -> None:
    """The extra dimensions' series: additive ones from this worker, rates cluster-wide."""
    for names, figures in ((_ADDITIVE, local), (_RATES, cluster)):
        for name in names:
            family = families[f"rcr_dimension_{name}"]
            for labels, value in _dimension_series(figures):
                family.add_metric([*labels, definition], getattr(value, name))


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
    """(window, channel, reason) series: the contract's labels, not the extra dimensions."""
    for window, by_label in figures.items():
        for label, value in by_label.items():
            if dimension_of(label) is None:
                yield (window, *label), value


def _dimension_series(
    figures: WindowFigures,
) -> Iterator[tuple[tuple[str, str, str], Figures]]:
    """(window, dimension, value) series of the extra dimensions."""
    for window, by_label in figures.items():
        for label, value in by_label.items():
            dimension = dimension_of(label)
            if dimension is not None:
                yield (window, dimension, label[1]), value


def _with_every_window(figures: WindowFigures, windows: tuple[str, ...]) -> WindowFigures:
    complete = {window: dict(figures.get(window, {})) for window in windows}
    for by_label in complete.values():
        by_label.setdefault(TOTAL, Figures())
    return {**figures, **complete}
