"""``rcr top``: a live terminal view of a worker for on-call, refreshed every second.

This module is only the polling loop and the command line; what the screen shows is built by
the pure functions of ``stream.top.render`` from what ``stream.top.client`` fetched.
"""

from __future__ import annotations

import contextlib
import sys
import time

import click
from rich.console import Console
from rich.live import Live

from stream.cli.options import settings_options
from stream.settings import Settings
from stream.top.client import WorkerClient
from stream.top.model import History
from stream.top.render import Dashboard


@click.command()
@click.option("--url", default=None, help="Worker to watch [default http://localhost:WEB_PORT].")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=1.0,
    show_default=True,
    help="Seconds between refreshes.",
)
@click.option("--once", is_flag=True, help="Print one frame and exit (1 if unreachable).")
@click.option("--top-window", default="7d", show_default=True, help="Window of /top.")
@click.option(
    "--limit",
    type=click.IntRange(1, 100),
    default=10,
    show_default=True,
    help="Rows of /top and /bursts.",
)
@settings_options
def top(
    settings: Settings,
    url: str | None,
    interval: float,
    once: bool,
    top_window: str,
    limit: int,
) -> None:
    """Watch RCR, contact rate, spikes, freshness and lag of a running worker, live."""
    token = settings.api_token.get_secret_value() if settings.api_token else None
    client = WorkerClient(
        url=(url or f"http://localhost:{settings.web_port}").rstrip("/"),
        token=token,
        timeout=max(1.0, min(3.0, interval * 2)),
        top_window=top_window,
        limit=limit,
    )
    if once:
        sys.exit(print_once(client, interval))
    # Ctrl-C is how one leaves a live view: no traceback, exit status 0.
    with contextlib.suppress(KeyboardInterrupt):
        watch(client, interval, Console())


def print_once(client: WorkerClient, interval: float) -> int:
    """One frame for scripts and tests: exit status 1 when the worker is unreachable."""
    history = History()
    snapshot = client.fetch()
    history.record(snapshot)
    Console().print(Dashboard(snapshot, history, interval))
    return 0 if snapshot.error is None else 1


def watch(client: WorkerClient, interval: float, console: Console) -> None:
    """Fetch, remember, redraw, sleep until the next tick; in the alternate screen like top."""
    history = History()
    with Live(console=console, screen=True, auto_refresh=False, transient=True) as live:
        while True:
            started = time.monotonic()
            snapshot = client.fetch()
            history.record(snapshot)
            live.update(Dashboard(snapshot, history, interval), refresh=True)
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
