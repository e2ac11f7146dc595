"""Does the broker let this worker in? Checked before Faust starts, and explained.

Faust exits when its producer cannot bootstrap, and aiokafka reports every refusal (a
certificate signed by another CA, a broker that wants TLS, a wrong SASL password) as the same
"Unable to bootstrap". So before the Faust app starts, the worker opens one connection of its
own with the same options, sends a metadata request through it, and turns a failure into a
reason that names the setting to check. While the broker refuses, the worker keeps retrying
with backoff and serves ``/healthz`` (200: the process is alive) and ``/readyz`` (503 with
the reason) on its usual address: nothing is consumed, so nothing is counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from typing import Any

from aiohttp import web
from aiokafka.conn import collect_hosts, create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    IllegalSaslStateError,
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.protocol.metadata import MetadataRequest

from stream.settings import Settings

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
RETRY_FIRST_S = 1.0
RETRY_MAX_S = 30.0
# A refused login: the broker's SaslAuthenticate error, or, for SCRAM, aiokafka 0.14 failing
# on a server-final message that carries an error (``e=``) instead of a signature (KeyError).
_LOGIN_REFUSED = (
    SaslAuthenticationFailed,
    AuthenticationFailedError,
    IllegalSaslStateError,
    KeyError,
    ValueError,
)
_CONNECTION_KEYS = (
    "request_timeout_ms",
    "security_protocol",
    "ssl_context",
    "sasl_mechanism",
    "sasl_plain_username",
    "sasl_plain_password",
)


def describe_refusal(exc: BaseException, options: dict[str, Any]) -> str:
    """Why a connection failed, in words that point at the setting to check (no secrets)."""
    protocol = options.get("security_protocol", "PLAINTEXT")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"TLS: the broker's certificate is not trusted ({exc.verify_message}); "
            "check RCR_KAFKA_SSL_CAFILE"
        )
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed ({exc.reason}); check RCR_KAFKA_SECURITY_PROTOCOL"
    if isinstance(exc, UnsupportedSaslMechanismError):
        return (
            f"the broker does not offer SASL {options.get('sasl_mechanism')}; "
            "check RCR_KAFKA_SASL_MECHANISM"
        )
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, OSError):
        return f"cannot connect ({exc})"
    if protocol.startswith("SASL") and isinstance(exc, _LOGIN_REFUSED):
        return (
            f"SASL {options.get('sasl_mechanism')} authentication as "
            f"{options.get('sasl_plain_username')!r} refused; check RCR_KAFKA_SASL_USERNAME "
            "and RCR_KAFKA_SASL_PASSWORD"
        )
    if isinstance(exc, KafkaConnectionError):
        return f"the broker closed the connection ({exc}); {_closed_hint(options)}"
    return f"{type(exc).__name__}: {exc}"


def _closed_hint(options: dict[str, Any]) -> str:
    """A broker that hangs up tells nothing: say which settings could explain it."""
    protocol = options.get("security_protocol", "PLAINTEXT")
    if protocol == "PLAINTEXT":
        return "does it want TLS or SASL? check RCR_KAFKA_SECURITY_PROTOCOL=PLAINTEXT"
    if protocol == "SSL":
        return (
            "does it want a client certificate (RCR_KAFKA_SSL_CERTFILE, RCR_KAFKA_SSL_KEYFILE) "
            "or SASL? check RCR_KAFKA_SECURITY_PROTOCOL=SSL"
        )
    return (
        f"check RCR_KAFKA_SECURITY_PROTOCOL={protocol} and RCR_KAFKA_SASL_MECHANISM="
        f"{options.get('sasl_mechanism')} (does the broker offer it?)"
    )


async def broker_refusal(options: dict[str, Any]) -> str | None:
    """None when one of the bootstrap brokers answers a metadata request over a connection
    made with ``options`` (TLS and SASL included); otherwise why the first one did not."""
    connect = {key: options[key] for key in _CONNECTION_KEYS if key in options}
    problems = []
    for host, port, _family in collect_hosts(options["bootstrap_servers"]):
        try:
            connection = await asyncio.wait_for(
                create_conn(host, port, client_id="rcr-preflight", **connect), CONNECT_TIMEOUT_S
            )
            try:
                await asyncio.wait_for(
                    connection.send(MetadataRequest(topics=[])), CONNECT_TIMEOUT_S
                )
            finally:
                connection.close()
        except (KafkaError, OSError, TimeoutError, KeyError, ValueError) as exc:
            problems.append(f"{host}:{port}: {describe_refusal(exc, options)}")
            continue
        return None
    return problems[0] if problems else "no bootstrap broker configured"


class _WaitingProbes:
    """/healthz and /readyz while the worker waits for the broker to let it in."""

    def __init__(self) -> None:
        self.reason = "checking the broker connection"

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"alive": True})

    async def readyz(self, _request: web.Request) -> web.Response:
        return web.json_response({"ready": False, "reasons": [self.reason]}, status=503)


async def wait_for_broker_access(settings: Settings, options: dict[str, Any]) -> None:
    """Return once the broker lets this worker in; until then retry and explain on /readyz."""
    problem = await broker_refusal(options)
    if problem is None:
        return
    probes = _WaitingProbes()
    app = web.Application()
    app.router.add_get("/healthz", probes.healthz)
    app.router.add_get("/readyz", probes.readyz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.web_host, settings.web_port)
    await site.start()
    delay = RETRY_FIRST_S
    try:
        while problem is not None:
            if problem != probes.reason:
                log.error("Kafka does not let this worker in: %s", problem)
                probes.reason = problem
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)
            problem = await broker_refusal(options)
        log.info("Kafka lets this worker in: starting")
    finally:
        with contextlib.suppress(Exception):
            await runner.cleanup()
