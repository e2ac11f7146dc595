"""The figure gauges as Prometheus sees them: headline families and every definition."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from stream.app.cluster import decode_partition_figures, encode_partition_figures
from stream.engine import TOTAL, Figures
from stream.engine.timeline import dimension_label
from stream.metrics.figures import FiguresCollector, FiguresSnapshot

BY_CUSTOMER = {"1h": {TOTAL: Figures(10, 8, 2, 2, 3, 1, 6)}}
BY_REASON = {"1h": {TOTAL: Figures(10, 9, 1, 1, 4, 0, 6)}}


def samples(snapshot: FiguresSnapshot) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(FiguresCollector(lambda: snapshot))
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in registry.collect()
        for sample in family.samples
    }


def labels(window: str, definition: str) -> tuple[tuple[str, str], ...]:
    return (("channel", "all"), ("definition", definition), ("reason", "all"), ("window", window))


def test_contract_families_show_the_headline_definition_and_name_it():
    snapshot = FiguresSnapshot(
        local={"v1": BY_CUSTOMER, "same_issue": BY_REASON},
        cluster={"v1": BY_CUSTOMER, "same_issue": BY_REASON},
        headline="same_issue",
        every_definition=True,
        windows=("1h",),
        definitions={"v1": ("customer", "7d"), "same_issue": ("customer_reason", "7d")},
    )
    found = samples(snapshot)
    assert found[("rcr_customers", labels("1h", "same_issue"))] == 9
    assert ("rcr_customers", labels("1h", "v1")) not in found
    assert found[("rcr_first_contact_resolution_rate", labels("1h", "same_issue"))] == 1.0
    assert found[("rcr_definition_customers", labels("1h", "v1"))] == 8
    assert found[("rcr_definition_repeat_contact_rate", labels("1h", "v1"))] == 0.25
    assert found[("rcr_definition_first_contact_resolution_rate", labels("1h", "v1"))] == 0.75
    info = (
        ("definition", "same_issue"),
        ("headline", "true"),
        ("matching_key", "customer_reason"),
        ("repeat_interval", "7d"),
    )
    assert found[("rcr_definition_info", info)] == 1


def test_one_definition_exports_no_per_definition_families():
    snapshot = FiguresSnapshot(
        local={"default": BY_CUSTOMER},
        cluster={"default": BY_CUSTOMER},
        windows=("1h", "24h"),
        maturity={"default": {"1h": 0.0, "24h": 0.25}},
        definitions={"default": ("customer", "7d")},
    )
    found = samples(snapshot)
    assert not [
        name for name, _ in found if name.startswith("rcr_definition_") and "info" not in name
    ]
    assert found[("rcr_resolved_contacts", labels("1h", "default"))] == 3
    assert found[("rcr_customers", labels("24h", "default"))] == 0  # every window, zeros
    maturity = (("definition", "default"), ("window", "24h"))
    assert found[("rcr_resolution_maturity_ratio", maturity)] == 0.25


def test_partition_figures_travel_with_every_definition():
    figures = {"v1": BY_CUSTOMER, "same_issue": BY_REASON}
    decoded = decode_partition_figures(b"3", encode_partition_figures(figures))
    assert decoded == ("3", figures)


def test_partition_figures_of_an_older_worker_are_skipped():
    old = b'{"1h": [["all", "all", 10, 8, 2, 2]]}'
    assert decode_partition_figures(b"3", old) is None


def test_extra_dimensions_have_families_of_their_own_never_the_contract_ones():
    queue = dimension_label("queue", "billing")
    figures = {"1h": {TOTAL: Figures(10, 8, 2, 2, 3, 1, 6), queue: Figures(4, 3, 1, 1, 0, 0, 4)}}
    snapshot = FiguresSnapshot(
        local={"default": figures}, cluster={"default": figures}, windows=("1h",)
    )
    found = samples(snapshot)
    by_queue = (
        ("definition", "default"),
        ("dimension", "queue"),
        ("value", "billing"),
        ("window", "1h"),
    )
    assert found[("rcr_dimension_contacts", by_queue)] == 4
    assert found[("rcr_dimension_repeat_contact_rate", by_queue)] == 1 / 3
    contract = [labels for name, labels in found if name == "rcr_contacts"]
    assert contract == [labels("1h", "default")]
