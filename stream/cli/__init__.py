"""The ``rcr`` command line: one click group, one module per command."""

from __future__ import annotations

import importlib

import click

from stream import __version__

# Command name -> module and function. A command's module is imported only when that command
# runs (or help lists it): `rcr compute` must not pay for the worker's Faust, Redis and
# settings imports, which cost more than a second of start-up.
COMMANDS = {
    "worker": ("stream.cli.worker", "worker"),
    "dev": ("stream.cli.dev", "dev"),
    "simulate": ("stream.cli.simulate", "simulate"),
    "replay": ("stream.cli.replay", "replay"),
    "compute": ("stream.cli.compute", "compute"),
    "lookup": ("stream.cli.lookup", "lookup"),
    "top": ("stream.cli.top", "top"),
    "rebuild-redis": ("stream.cli.rebuild_redis", "rebuild_redis"),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, function = COMMANDS[name]
        command: click.Command = getattr(importlib.import_module(module), function)
        return command


@click.group(
    cls=_LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="rcr")
def main() -> None:
    """rcr-stream: live Repeat Contact Rate and Contact Rate."""
