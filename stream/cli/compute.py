"""``rcr compute``: the engine offline over JSON Lines files, one figure set per period."""

from __future__ import annotations

import math
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click
import orjson
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TimeRemainingColumn
from rich.table import Table

from stream.cli.denominator_files import add_denominators, parse_denominator_option
from stream.durations import parse_duration_ms
from stream.engine import (
    Calendar,
    ContactEvent,
    PeriodFigures,
    PeriodKind,
    Rejection,
    collect_timelines,
    decode_contact,
    figures_per_period,
)
from stream.engine.batch import PeriodFinder
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
from stream.engine.validation import DEFAULT_MAX_RECORD_BYTES

# Past this many, invalid lines are only counted: a broken export must not flood a terminal.
MAX_REPORTED_LINES = 1000
PROGRESS_STEP_BYTES = 1 << 20


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--period",
    type=click.Choice([kind.value for kind in PeriodKind]),
    default="month",
    show_default=True,
    help="calendar period to group by",
)
@click.option("--tz", "zone", default="UTC", show_default=True, help="IANA time zone")
@click.option(
    "--customer-base",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="active customers: the denominator of the contact rate",
)
@click.option(
    "--repeat-interval",
    default="7d",
    show_default=True,
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
    callback=parse_denominator_option,
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
    invalid: Counter[str] = Counter()
    events = _read_events([Path(f) for f in files], invalid)
    # The live worker's exclusions, before the engine as there: both count the same contacts.
    excluded = ExcludedContacts(policy, PeriodFinder(calendar, PeriodKind(period)))
    timelines, _ = collect_timelines(excluded.admit(events))
    results = figures_per_period(timelines.values(), calendar, PeriodKind(period), interval_ms)
    rows = [
        _as_json(result, calendar, customer_base) | _exclusions_json(result, excluded)
        for result in results
    ]
    if denominators:
        add_denominators(rows, denominators, calendar, PeriodKind(period))
    if output == "json":
        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        Console().print(_as_table(rows))
    if invalid:
        summary = ", ".join(f"{count} {reason}" for reason, count in invalid.most_common())
        click.echo(f"rcr compute: {sum(invalid.values())} invalid lines ({summary})", err=True)


def _read_events(paths: list[Path], invalid: Counter[str]) -> Iterator[ContactEvent]:
    total = sum(path.stat().st_size for path in paths)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=not sys.stderr.isatty(),
    ) as progress:
        task = progress.add_task("reading", total=total)
        for path in paths:
            with path.open("rb") as handle:
                yield from _events_in(path, handle, invalid, progress, task)


def _events_in(
    path: Path, handle: IO[bytes], invalid: Counter[str], progress: Progress, task: Any
) -> Iterator[ContactEvent]:
    unreported = 0
    for number, line in enumerate(handle, start=1):
        unreported += len(line)
        if unreported >= PROGRESS_STEP_BYTES:  # the bar is slower than parsing a line
            progress.advance(task, unreported)
            unreported = 0
        if not line.strip():
            continue
        decoded = decode_contact(line, DEFAULT_MAX_RECORD_BYTES)
        if isinstance(decoded, Rejection):
            invalid[decoded.reason.value] += 1
            if sum(invalid.values()) <= MAX_REPORTED_LINES:
                message = f"{path}:{number}: {decoded.reason.value}: {decoded.detail}"
                progress.console.print(message, markup=False, highlight=False, soft_wrap=True)
            continue
        yield decoded
    progress.advance(task, unreported)


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
        "contact_rate": None if math.isnan(contact_rate) else contact_rate,
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
