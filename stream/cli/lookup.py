"""``rcr lookup CUSTOMER``: what a support desk sees about one customer, from Redis."""

from __future__ import annotations

import sys

import click
import orjson
import redis
from redis.exceptions import RedisError

from stream.cli.options import settings_options
from stream.settings import Settings, redacted_url
from stream.sinks.redis_projection import customer_key, redis_tls_options


@click.command()
@click.argument("customer_id")
@settings_options
def lookup(settings: Settings, customer_id: str) -> None:
    """Print CUSTOMER_ID's contact counts per window and last contact, as JSON."""
    try:
        client = redis.Redis.from_url(
            settings.redis_url,
            socket_connect_timeout=3,
            decode_responses=True,
            **redis_tls_options(settings),
        )
        fields = client.hgetall(customer_key(settings.redis_prefix, customer_id))
    except (RedisError, OSError) as exc:
        where = redacted_url(settings.redis_url)
        raise click.ClickException(f"Redis at {where} unreachable: {exc}") from None
    if not fields:
        click.echo(f"no contacts known for customer {customer_id!r}", err=True)
        sys.exit(1)
    document = {"customer_id": customer_id, **dict(sorted(fields.items()))}
    click.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2))
