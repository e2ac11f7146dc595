"""Every setting as a CLI flag: ``--windows`` beside ``RCR_WINDOWS``, flag wins."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from stream.settings import ConfigError, Settings, env_name, load_settings


def settings_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add one ``--flag`` per settings field and pass the result as ``settings=``."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        overrides = {name: kwargs.pop(name) for name in Settings.model_fields if name in kwargs}
        try:
            settings = load_settings(**overrides)
        except ConfigError as exc:
            raise click.UsageError(str(exc)) from None
        return command(*args, settings=settings, **kwargs)

    for name, field in reversed(list(Settings.model_fields.items())):
        flag = "--" + name.replace("_", "-")
        wrapper = click.option(
            flag,
            name,
            default=None,
            help=f"{field.description} [env {env_name(name)}; default {field.default}]",
        )(wrapper)
    return wrapper
