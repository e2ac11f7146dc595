"""The ``rcr`` command line: one click group, one module per command."""

from __future__ import annotations

import click

from stream import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="rcr")
def main() -> None:
    """rcr-stream: live Repeat Contact Rate and Contact Rate."""


def _register() -> None:
    # Imported here so that `rcr --help` stays fast and each command owns its imports.
    from stream.cli.compute import compute
    from stream.cli.dev import dev
    from stream.cli.lookup import lookup
    from stream.cli.rebuild_redis import rebuild_redis
    from stream.cli.replay import replay
    from stream.cli.simulate import simulate
    from stream.cli.top import top
    from stream.cli.worker import worker

    for command in (worker, dev, simulate, replay, compute, lookup, top, rebuild_redis):
        main.add_command(command)


_register()
