"""``rcr compute``: the engine offline over JSON Lines files, one figure set per period."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import orjson

from stream.cli.compute_engine import engine_figures
from stream.cli.compute_parts import read_input
from stream.durations import parse_duration_ms
from stream.engine import (
    Calendar,
    PeriodFigures,
    PeriodKind,
    Rejection,
)
from stream.engine.batch import PeriodFinder
from stream.engine.bulk import BulkBatch, Contacts, figures_of
from stream.engine.events import Outcome
from stream.engine.exclusions import (
    DEFAULT_ANONYMOUS_CUSTOMER_IDS,
    DEFAULT_SHORT_ABANDON_THRESHOLD,
    AbandonedExclusion,
    ExcludedContacts,
    ExclusionPolicy,
    identity_coverage,
    parse_anonymous_ids,
)
from stream.engine.figures import json_number
from stream.engine.validation import DEFAULT_MAX_RECORD_BYTES

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

# Past this many, invalid lines are only counted: a broken export must not flood a terminal.
MAX_REPORTED_LINES = 1000


def _denominator_files(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, Path]:
    """``--denominator`` options; their module (which imports the settings, a fifth of a
    second) only when one is given."""
    if not values:
        return {}
    from stream.cli.denominator_files import parse_denominator_option

    return parse_denominator_option(ctx, param, values)


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--period",
    type=click.Choice([kind.value for kind in PeriodKind]),
    default="month",
    show_default=True,
    help="calendar period to group by",
)
@click.option(
    "--tz", "zone", default="UTC", show_default=True, envvar="RCR_TIMEZONE", help="IANA time zone"
)
@click.option(
    "--customer-base",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    envvar="RCR_CUSTOMER_BASE",
    help="active customers: the denominator of the contact rate",
)
@click.option(
    "--repeat-interval",
    default="7d",
    show_default=True,
    envvar="RCR_REPEAT_INTERVAL",
    help="max gap between a contact and its repeat",
)
@click.option(
    "--exclude-abandoned",
    type=click.Choice([choice.value for choice in AbandonedExclusion]),
    default=AbandonedExclusion.NONE.value,
    show_default=True,
    envvar="RCR_EXCLUDE_ABANDONED",
    help="abandoned contacts left out of the figures",
)
@click.option(
    "--short-abandon-threshold",
    default=DEFAULT_SHORT_ABANDON_THRESHOLD,
    show_default=True,
    envvar="RCR_SHORT_ABANDON_THRESHOLD",
    help="an abandoned contact that waited less is short-abandoned",
)
@click.option(
    "--anonymous-customer-ids",
    default=DEFAULT_ANONYMOUS_CUSTOMER_IDS,
    show_default=True,
    envvar="RCR_ANONYMOUS_CUSTOMER_IDS",
    help="customer ids meaning no known customer, comma separated, any case",
)
@click.option(
    "--denominator",
    "denominators",
    multiple=True,
    metavar="NAME=FILE",
    callback=_denominator_files,
    help="JSON Lines of count records (e.g. orders), repeatable: adds denominators.NAME",
)
@click.option(
    "--format", "output", type=click.Choice(["json", "table"]), default="json", show_default=True
)
def compute(
    files: tuple[str, ...],
    period: str,
    zone: str,
    customer_base: float | None,
    repeat_interval: str,
    exclude_abandoned: str,
    short_abandon_threshold: str,
    anonymous_customer_ids: str,
    denominators: dict[str, Path],
    output: str,
) -> None:
    """Repeat Contact Rate and Contact Rate per period from JSON Lines FILES."""
    try:
        interval_ms = parse_duration_ms(repeat_interval)
        calendar = Calendar(zone)
        policy = ExclusionPolicy(
            AbandonedExclusion(exclude_abandoned),
            parse_duration_ms(short_abandon_threshold),
            parse_anonymous_ids(anonymous_customer_ids),
        )
    except Exception as exc:
        raise click.BadParameter(str(exc)) from None
    paths = [Path(f) for f in files]
    kind = PeriodKind(period)
    rejections = Rejections()
    # The live worker's exclusions, before the engine as there: both count the same contacts.
    excluded = ExcludedContacts(policy, PeriodFinder(calendar, kind))
    batch = BulkBatch(DEFAULT_MAX_RECORD_BYTES, policy.anonymous_customer_ids)
    contacts = _read(paths, batch, rejections)
    if batch.needs_engine:
        # The fast read reported the invalid lines already (the same lines, judged alike).
        results = engine_figures(paths, excluded, calendar, kind, interval_ms, _already_reported)
    else:
        results = figures_of(contacts, calendar, kind, interval_ms)
    rows = [
        _as_json(result, calendar, customer_base) | _exclusions_json(result, excluded)
        for result in results
    ]
    if denominators:
        from stream.cli.denominator_files import add_denominators

        add_denominators(rows, denominators, calendar, kind)
    if output == "json":
        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        from rich.console import Console

        Console().print(_as_table(rows))
    if rejections.counts:
        counts = rejections.counts
        summary = ", ".join(f"{count} {reason}" for reason, count in counts.most_common())
        click.echo(f"rcr compute: {counts.total()} invalid lines ({summary})", err=True)


class Rejections:
    """Counts invalid lines by reason and prints the first ones with their line numbers."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.console: Console | None = None  # rich is imported only if there is something to say

    def __call__(self, path: Path, number: int, rejection: Rejection) -> None:
        self.counts[rejection.reason.value] += 1
        if self.counts.total() <= MAX_REPORTED_LINES:
            if self.console is None:
                from rich.console import Console

                self.console = Console(stderr=True)
            message = f"{path}:{number}: {rejection.reason.value}: {rejection.detail}"
            self.console.print(message, markup=False, highlight=False, soft_wrap=True)

    def count(self, counts: Counter[str]) -> None:
        """Lines past the reported ones: counted only."""
        self.counts.update(counts)


def _read(paths: list[Path], batch: BulkBatch, rejections: Rejections) -> Contacts:
    """Every valid inbound contact; a bar on a terminal."""
    if not sys.stderr.isatty():
        return read_input(paths, batch, rejections, _no_progress)
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TimeRemainingColumn

    total = sum(path.stat().st_size for path in paths)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task("reading", total=total)
        rejections.console = progress.console
        return read_input(paths, batch, rejections, lambda done: progress.advance(task, done))


def _already_reported(path: Path, number: int, rejection: Rejection) -> None:
    """The engine path re-reading what the fast path read (and reported) first."""


def _no_progress(_: int) -> None:
    """Nobody watches a bar on a pipe or a file."""


def _as_json(result: PeriodFigures, calendar: Calendar, base: float | None) -> dict[str, Any]:
    figures = result.figures
    contact_rate = figures.contact_rate(base)
    return {
        "period": result.period.label,
        "start": calendar.to_rfc3339(result.period.start_ms),
        "end": calendar.to_rfc3339(result.period.end_ms),
        "contacts": figures.contacts,
        "customers": figures.customers,
        "repeat_customers": figures.repeat_customers,
        "repeat_contacts": figures.repeat_contacts,
        "repeat_contact_rate": figures.repeat_contact_rate,
        "contact_rate": json_number(contact_rate),
        # Look-forward resolution, judged at the newest contact of the input.
        "resolved_contacts": figures.resolved_contacts,
        "unresolved_contacts": figures.unresolved_contacts,
        "provisional_contacts": figures.provisional_contacts,
        "first_contact_resolution_rate": json_number(figures.first_contact_resolution_rate),
    }


def _exclusions_json(result: PeriodFigures, excluded: ExcludedContacts) -> dict[str, Any]:
    counts = excluded.in_period(result.period)
    anonymous = counts[Outcome.ANONYMOUS.value]
    return {
        "anonymous_contacts": anonymous,
        "excluded_contacts": counts,
        "identity_coverage": identity_coverage(result.figures.contacts, anonymous),
    }


def _as_table(rows: list[dict[str, Any]]) -> Table:
    from rich.table import Table

    table = Table(
        "period",
        "contacts",
        "customers",
        "repeat customers",
        "repeat contacts",
        "repeat contact rate",
        "contact rate",
        "identity coverage",
        title="Repeat Contact Rate",
    )
    for row in rows:
        rate = row["contact_rate"]
        coverage = row["identity_coverage"]
        table.add_row(
            row["period"],
            str(row["contacts"]),
            str(row["customers"]),
            str(row["repeat_customers"]),
            str(row["repeat_contacts"]),
            f"{row['repeat_contact_rate']:.2%}",
            "-" if rate is None else f"{rate:.4f}",
            "-" if coverage is None else f"{coverage:.2%}",
        )
    return table
