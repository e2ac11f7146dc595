"""``rcr compute --denominator NAME=FILE``: count records from JSON Lines, per period.

Each line is a count record as on a count topic (``{"timestamp": ..., "count": 3}``); a file
has no Kafka record timestamp, so a line without a valid ``timestamp`` is invalid. Each
output period gains ``"denominators": {NAME: {"value": N, "contacts_per": x | null}}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from stream.engine import Calendar, PeriodKind
from stream.engine.denominators import CountRecord, counts_per_period, decode_count_record
from stream.settings import check_denominator_name

MAX_REPORTED_LINES = 1000


def parse_denominator_option(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for value in values:
        name, equals, path = value.partition("=")
        try:
            check_denominator_name(name)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx, param) from None
        if not equals or not Path(path).is_file():
            raise click.BadParameter(f"expected NAME=FILE of an existing file: {value!r}")
        if name in files:
            raise click.BadParameter(f"denominator {name!r} given twice")
        files[name] = Path(path)
    return files


def add_denominators(
    rows: list[dict[str, Any]], files: dict[str, Path], calendar: Calendar, kind: PeriodKind
) -> None:
    """Merge each denominator's value in every output period, and contacts per unit."""
    totals = {
        name: counts_per_period(_records(path), calendar, kind) for name, path in files.items()
    }
    for row in rows:
        row["denominators"] = {
            name: {
                "value": by_period.get(row["period"], 0),
                "contacts_per": row["contacts"] / by_period[row["period"]]
                if by_period.get(row["period"])
                else None,
            }
            for name, by_period in totals.items()
        }


def _records(path: Path) -> list[CountRecord]:
    records, invalid = [], 0
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            record = decode_count_record(line, None)
            if record is None:
                invalid += 1
                if invalid <= MAX_REPORTED_LINES:
                    click.echo(f"{path}:{number}: not a count record", err=True)
                continue
            records.append(record)
    if invalid:
        click.echo(f"rcr compute: {invalid} invalid lines in {path}", err=True)
    return records
