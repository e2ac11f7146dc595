"""``rcr replay FILE...``: backfill historical exports into the contacts topic."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from stream.cli.options import settings_options
from stream.durations import parse_duration_ms
from stream.replay import (
    FORMATS,
    Loaded,
    Pacer,
    Record,
    ReplayError,
    RowSpec,
    load,
    parse_conditions,
    parse_constants,
    parse_mapping,
    parse_speed,
    send_records,
    shift_to_now_ms,
)
from stream.settings import Settings
from stream.simulate.generator import format_timestamp_ms

TWCS_EXAMPLE = (
    "rcr replay twcs-excerpt.csv --map customer_id=author_id,timestamp=created_at,"
    "contact_id=tweet_id --where inbound=True --set channel=social "
    "--time-format '%a %b %d %H:%M:%S %z %Y'"
)


class RateColumn(ProgressColumn):
    """Records per second, smoothed by rich over the last few updates."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f}/s" if speed else "-/s", style="progress.data.speed")


@click.command("replay", epilog=f"\b\nExample (the TWCS excerpt):\n  {TWCS_EXAMPLE}")
@settings_options
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--format",
    "file_format",
    type=click.Choice(FORMATS),
    default="auto",
    show_default=True,
    help="input format (auto: from the file name)",
)
@click.option(
    "--map",
    "maps",
    multiple=True,
    metavar="FIELD=COLUMN[,...]",
    help="contract field from a source column, e.g. customer_id=author_id",
)
@click.option(
    "--where",
    "wheres",
    multiple=True,
    metavar="COLUMN=VALUE",
    help="keep rows whose column equals (or, with !=, differs from) the value",
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="FIELD=VALUE",
    help="constant field on every event, e.g. channel=social",
)
@click.option(
    "--time-format",
    default=None,
    help="strptime format of the timestamp [default: RFC 3339 or epoch s/ms]",
)
@click.option(
    "--speed",
    default=None,
    help="pace by event time, e.g. 60x = one minute per second [default: max]",
)
@click.option(
    "--max-pause",
    default="10s",
    show_default=True,
    help="when paced, longer gaps in the data are cut to this",
)
@click.option(
    "--shift-to-now",
    is_flag=True,
    help="move event times so the newest is now (live windows then see the replay)",
)
@click.option("--dry-run", is_flag=True, help="read, convert and summarise; send nothing")
@click.option(
    "--create-topic/--no-create-topic",
    default=True,
    show_default=True,
    help="create the topic with --topic-partitions when it does not exist",
)
def replay(settings: Settings, files: tuple[str, ...], **options: Any) -> None:
    """Send historical contacts (JSON Lines or CSV) to the topic, in event-time order.

    Each row is filtered (--where), mapped to the contract's fields (--map, --set,
    --time-format) and validated as the worker would; only contract fields are sent, keyed
    by customer_id, oldest first. Rejected rows are listed at the end with their row numbers.
    """
    console = Console(stderr=True)
    try:
        spec = RowSpec(
            mapping=parse_mapping(options["maps"]),
            where=parse_conditions(options["wheres"]),
            constants=parse_constants(options["sets"]),
            time_format=options["time_format"],
        )
        speed = parse_speed(options["speed"])
        max_pause = parse_duration_ms(options["max_pause"]) / 1000
        loaded = _load(files, spec, options["file_format"], console)
    except (ReplayError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    shift_ms = shift_to_now_ms(loaded.records) if options["shift_to_now"] else 0
    sent = 0
    if not options["dry_run"] and loaded.records:
        partitions = settings.topic_partitions if options["create_topic"] else None
        sent = asyncio.run(
            _send(loaded.records, settings, Pacer(speed, max_pause), shift_ms, partitions, console)
        )
    click.echo(summary(loaded, sent, settings.topic, shift_ms, dry_run=options["dry_run"]))
    if loaded.rejections.total:
        Console(file=sys.stdout).print(rejection_table(loaded))
        if not loaded.records:
            raise SystemExit(1)


def _load(files: tuple[str, ...], spec: RowSpec, file_format: str, console: Console) -> Loaded:
    """Read every file, with a row counter on a terminal (exports can be large)."""
    with Progress(
        SpinnerColumn(),
        TextColumn("reading"),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task("read", total=None)
        return load([Path(f) for f in files], spec, file_format, lambda: progress.advance(task))


async def _send(
    records: list[Record],
    settings: Settings,
    pacer: Pacer,
    shift_ms: int,
    partitions: int | None,
    console: Console,
) -> int:
    """Produce the records with a progress bar (rate, ETA); Ctrl-C stops after a flush."""
    from stream.app.kafka_options import security_options
    from stream.producing import KeyedProducer, ensure_topic
    from stream.simulate.runner import install_stop_handlers

    stop = asyncio.Event()
    install_stop_handlers(stop)
    if partitions:
        await ensure_topic(
            settings.bootstrap_servers, settings.topic, partitions, security_options(settings)
        )
    columns = (
        TextColumn("replay"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TextColumn("{task.fields[at]}"),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, disable=not console.is_terminal) as progress:
        task = progress.add_task("send", total=len(records), at="")

        def advance(record: Record) -> None:
            at = format_timestamp_ms(record.timestamp_ms + shift_ms)
            progress.update(task, advance=1, at=at)

        async with KeyedProducer(
            settings.bootstrap_servers,
            settings.topic,
            client_id="rcr-replay",
            security=security_options(settings),
        ) as producer:
            await send_records(
                records, producer, pacer=pacer, shift_ms=shift_ms, stop=stop, on_sent=advance
            )
    # Leaving the block flushed: every record counted here was acknowledged by the broker.
    return producer.sent


def summary(loaded: Loaded, sent: int, topic: str, shift_ms: int, *, dry_run: bool) -> str:
    """One line: rows read, filtered, rejected, sent; the event-time span."""
    span = ""
    if loaded.records:
        first = format_timestamp_ms(loaded.records[0].timestamp_ms + shift_ms)
        last = format_timestamp_ms(loaded.records[-1].timestamp_ms + shift_ms)
        span = f"; event time {first} .. {last}"
    shifted = f" (shifted by {shift_ms / 3_600_000:+,.1f}h)" if shift_ms else ""
    action = f"would send {len(loaded.records)}" if dry_run else f"sent {sent}"
    return (
        f"replay: {loaded.rows} rows read, {loaded.filtered} filtered out, "
        f"{loaded.rejections.total} rejected; {action} events for {loaded.customers} customers "
        f"to {topic!r}{span}{shifted}"
    )


def rejection_table(loaded: Loaded) -> Table:
    """Rejected rows per reason: count, first row numbers, an example of the problem."""
    table = Table(title="rejected rows", title_justify="left")
    table.add_column("reason")
    table.add_column("rows", justify="right")
    table.add_column("first rows")
    table.add_column("example")
    rejections = loaded.rejections
    for reason, count in rejections.counts.most_common():
        table.add_row(reason, str(count), rejections.rows(reason), rejections.details[reason])
    return table
