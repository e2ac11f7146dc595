"""``rcr simulate``: realistic contact traffic to the contacts topic, to rehearse alerts."""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from datetime import UTC, datetime
from typing import Any

import click

from stream.cli.options import settings_options
from stream.durations import parse_duration_ms
from stream.settings import Settings
from stream.simulate import SCENARIOS, SimConfig, default_customers


def parse_duration_s(text: str | None) -> float | None:
    """``10m`` -> 600.0; None stays None. Raises ``click.BadParameter`` naming the forms."""
    if text is None:
        return None
    try:
        return parse_duration_ms(text) / 1000
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def parse_start(text: str | None, now: float) -> float | None:
    """``--start``: an RFC 3339 time or date (naive = UTC), or a duration meaning "ago"."""
    if text is None:
        return None
    try:
        return now - parse_duration_ms(text) / 1000
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is neither a time (2024-05-01, 2024-05-01T08:00:00Z) nor a duration (7d)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def parse_speed(text: str | None) -> float:
    """``60x`` or ``60`` -> 60.0; ``max`` (or nothing) -> as fast as possible."""
    if text is None or text.strip().lower() in {"max", "inf"}:
        return math.inf
    try:
        value = float(text.strip().lower().removesuffix("x"))
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected e.g. 60x, 1x or max") from None
    if not value > 0:
        raise click.BadParameter(f"{text!r}: the speed must be positive")
    return value


def launch_offset_s(text: str, start: float) -> float:
    """``--launch-at``: a duration after the start, or an absolute RFC 3339 time."""
    try:
        return parse_duration_ms(text) / 1000
    except ValueError:
        absolute = parse_start(text, start)
        assert absolute is not None
        return max(0.0, absolute - start)


@click.command("simulate")
@settings_options
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="mean events per second (over a day: a diurnal curve)",
)
@click.option("--duration", default=None, help="event-time span, e.g. 10m [default: until Ctrl-C]")
@click.option("--seed", type=int, default=None, help="same seed, same traffic [default: random]")
@click.option("--scenario", type=click.Choice(SCENARIOS), default="steady", show_default=True)
@click.option(
    "--customers",
    type=click.IntRange(min=1),
    default=None,
    help="customer population [default: rate x 1,000,000]",
)
@click.option(
    "--repeat-probability",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.2,
    show_default=True,
    help="chance a contact is followed up by the same customer",
)
@click.option(
    "--launch-at",
    default="10m",
    show_default=True,
    help="launch: when it starts, after the start (10m) or at a time",
)
@click.option(
    "--launch-factor",
    type=click.FloatRange(min=1),
    default=3.0,
    show_default=True,
    help="launch: volume multiplier of the launch reason",
)
@click.option("--launch-ramp", default=None, help="launch: ramp duration, e.g. 30m [default: step]")
@click.option("--launch-reason", default="technical", show_default=True)
@click.option("--launch-channel", default="chat", show_default=True)
@click.option(
    "--start",
    default=None,
    help="historical start (2024-05-01T00:00:00Z, or 7d for a week ago): accelerated",
)
@click.option(
    "--speed",
    default=None,
    help="with --start: event time per wall second, e.g. 60x [default: max]",
)
@click.option(
    "--diurnal-amplitude",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.6,
    show_default=True,
    help="swing of the daily curve around --rate (0: flat; 0.6: 0.4x at 2 am, 1.6x at 2 pm UTC)",
)
@click.option(
    "--create-topic/--no-create-topic",
    default=True,
    show_default=True,
    help="create the topic with --topic-partitions when it does not exist",
)
def simulate(settings: Settings, **options: Any) -> None:
    """Produce realistic contacts to the contacts topic, keyed by customer_id.

    Live by default: event times are the wall clock, at --rate per second on average (a
    diurnal curve: more in office hours, UTC). --scenario launch multiplies one reason's
    contacts (and their repeats) by --launch-factor from --launch-at on, so alerts and
    dashboards can be rehearsed. Ctrl-C stops cleanly after flushing what was produced.
    """
    from stream.app.kafka_options import security_options
    from stream.simulate.runner import run_simulation

    now = time.time()
    start = parse_start(options["start"], now)
    config = build_config(options, start if start is not None else now)
    report = asyncio.run(
        run_simulation(
            config,
            bootstrap_servers=settings.bootstrap_servers,
            topic=settings.topic,
            start=start,
            duration_s=parse_duration_s(options["duration"]),
            speed=parse_speed(options["speed"]),
            partitions=settings.topic_partitions if options["create_topic"] else None,
            security=security_options(settings),
        )
    )
    click.echo(report.summary())


def build_config(options: dict[str, Any], start: float) -> SimConfig:
    """The generator's config from the command line; a fresh random seed when none is given."""
    rate = float(options["rate"])
    ramp = parse_duration_s(options["launch_ramp"])
    try:
        return SimConfig(
            rate=rate,
            customers=options["customers"] or default_customers(rate),
            seed=options["seed"] if options["seed"] is not None else secrets.randbelow(10**6),
            scenario=options["scenario"],
            repeat_probability=options["repeat_probability"],
            launch_at_s=launch_offset_s(options["launch_at"], start),
            launch_factor=options["launch_factor"],
            launch_ramp_s=ramp or 0.0,
            launch_reason=options["launch_reason"],
            launch_channel=options["launch_channel"],
            diurnal_amplitude=options["diurnal_amplitude"],
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
