"""``rcr worker``: one worker process (a thin wrapper over Faust's own worker)."""

from __future__ import annotations

import asyncio

import click
import faust

from stream.cli.options import settings_options
from stream.settings import Settings


@click.command()
@settings_options
def worker(settings: Settings) -> None:
    """Consume contacts, keep state, serve /metrics, /rates and lookups."""
    run_worker(settings)


def run_worker(settings: Settings) -> None:
    from stream.app.broker_access import wait_for_broker_access
    from stream.app.kafka_options import client_options
    from stream.app.worker import ContactsWorker

    # Faust exits on a refused connection with a generic error: wait here instead, retrying
    # and saying why on /readyz. A private loop, so Faust still finds none and makes its own.
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(wait_for_broker_access(settings, client_options(settings)))
    finally:
        loop.close()

    contacts = ContactsWorker(settings)
    # Web host and port are app settings (see ContactsWorker); Faust's worker runs the rest.
    faust.Worker(
        contacts.app, loglevel=settings.log_level.upper(), quiet=True
    ).execute_from_commandline()
