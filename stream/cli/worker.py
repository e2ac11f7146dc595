"""``rcr worker``: one worker process (a thin wrapper over Faust's own worker)."""

from __future__ import annotations

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
    from stream.app.worker import ContactsWorker

    contacts = ContactsWorker(settings)
    # Web host and port are app settings (see ContactsWorker); Faust's worker runs the rest.
    faust.Worker(
        contacts.app, loglevel=settings.log_level.upper(), quiet=True
    ).execute_from_commandline()
