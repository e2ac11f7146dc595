"""Secured services for the security tests: throwaway certificates, a TLS front for the
embedded broker, a broker that demands SASL, a Redis that speaks only TLS.

The embedded broker (Tansu 0.6.0) cannot serve TLS itself (its ``--cert`` and ``--key`` are
mutually exclusive and neither switches the listener to TLS; see docs/RELIABILITY.md), so TLS
is terminated by a small proxy in front of it: the clients still make a real TLS handshake,
verify the certificate against the configured CA, and every byte they exchange with the
broker goes through it. The broker advertises the proxy's address, so no client can reach it
around the TLS front.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import redis

from stream.embedded import EmbeddedBroker, EmbeddedRedis, free_port, is_listening, tansu_binary

CERT_DAYS = "2"


@dataclass(frozen=True)
class Certs:
    """A CA, a server certificate for 127.0.0.1/localhost, a client certificate, and a second
    CA that signed neither (what a client trusting the wrong CA has)."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _self_signed_ca(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", CERT_DAYS,
        "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(cert),
    )  # fmt: skip
    return cert, key


def _signed(
    directory: Path, name: str, ca: tuple[Path, Path], extensions: str
) -> tuple[Path, Path]:
    cert, key, request = (directory / f"{name}{suffix}" for suffix in (".pem", ".key", ".csr"))
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
        "-keyout", str(key), "-out", str(request),
    )  # fmt: skip
    ext = directory / f"{name}.ext"
    ext.write_text(extensions + "\n")
    _openssl(
        "x509", "-req", "-in", str(request), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
        "-CAcreateserial", "-days", CERT_DAYS, "-extfile", str(ext), "-out", str(cert),
    )  # fmt: skip
    return cert, key


def make_certs(directory: Path) -> Certs:
    """Generate every certificate the tests need (openssl, a few hundred milliseconds)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = _self_signed_ca(directory, "test-ca")
    other_ca, _ = _self_signed_ca(directory, "other-ca")
    server = _signed(
        directory, "server", ca, "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "extendedKeyUsage=serverAuth",
    )  # fmt: skip
    client = _signed(directory, "client", ca, "extendedKeyUsage=clientAuth")
    return Certs(ca[0], server[0], server[1], client[0], client[1], other_ca)


class TlsFront:
    """Accepts TLS on its own port (client certificate required) and forwards the decrypted
    bytes to a plaintext port. Counts the connections that failed the TLS handshake: a client
    that connects without TLS, or without the client certificate, shows up there."""

    def __init__(self, certs: Certs, target_port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = free_port(host)
        self.target_port = target_port
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=certs.ca)
        self.context.load_cert_chain(certs.server_cert, certs.server_key)
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.handshakes = 0
        self.handshake_failures = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"kafka://{self.host}:{self.port}"

    def start(self) -> TlsFront:
        self._thread.start()
        listen = asyncio.start_server(self._relay, self.host, self.port)
        self._server = asyncio.run_coroutine_threadsafe(listen, self._loop).result(5)
        return self

    async def _relay(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        try:
            await client_out.start_tls(self.context, ssl_handshake_timeout=5)
        except (ssl.SSLError, OSError, TimeoutError):
            self.handshake_failures += 1
            client_out.transport.abort()
            return
        self.handshakes += 1
        try:
            broker_in, broker_out = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            client_out.close()
            return
        await asyncio.gather(_pipe(client_in, broker_out), _pipe(broker_in, client_out))

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, ssl.SSLError, asyncio.IncompleteReadError):
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    with contextlib.suppress(OSError, ssl.SSLError, RuntimeError):
        sink.close()


class BrokerBehind(EmbeddedBroker):
    """The embedded broker on a private port, advertising another address (the TLS front)."""

    def __init__(self, port: int, advertised_port: int, host: str = "127.0.0.1") -> None:
        super().__init__(host, port)
        self.advertised_port = advertised_port

    def _command(self, workdir: Path) -> list[str]:
        return [
            tansu_binary(), "broker",
            "--listener-url", f"tcp://{self.host}:{self.port}",
            "--advertised-listener-url", f"tcp://{self.host}:{self.advertised_port}",
            "--storage-engine", "memory://tansu/",
        ]  # fmt: skip

    def _ready(self) -> bool:
        return is_listening(self.host, self.port)


class AuthenticatingBroker(EmbeddedBroker):
    """The embedded broker with ``--authentication``: every client must pass SASL first."""

    def _command(self, workdir: Path) -> list[str]:
        return [*super()._command(workdir), "--authentication"]

    def _ready(self) -> bool:
        return is_listening(self.host, self.port)  # anonymous metadata requests are refused


class TlsRedis(EmbeddedRedis):
    """redis-server listening on TLS only, client certificates required, a password set."""

    def __init__(self, certs: Certs, password: str) -> None:
        super().__init__(password=password)
        self.certs = certs

    @property
    def url(self) -> str:
        return super().url.replace("redis://", "rediss://", 1)

    def _command(self, workdir: Path) -> list[str]:
        command = super()._command(workdir)
        config = Path(command[-1])
        lines = config.read_text().replace(f"port {self.port}", "port 0")
        lines += "\n".join(
            [
                f"tls-port {self.port}",
                f"tls-cert-file {self.certs.server_cert}",
                f"tls-key-file {self.certs.server_key}",
                f"tls-ca-cert-file {self.certs.ca}",
                "tls-auth-clients yes",
                "",
            ]
        )
        config.write_text(lines)
        return command

    def _ready(self) -> bool:
        if not is_listening(self.host, self.port):
            return False
        client = self.client()
        try:
            return bool(client.ping())
        except (redis.RedisError, OSError):
            return False
        finally:
            client.close()

    def client(self) -> redis.Redis:
        """A client with the right CA, client certificate and password."""
        return redis.Redis.from_url(
            self.url,
            ssl_ca_certs=str(self.certs.ca),
            ssl_certfile=str(self.certs.client_cert),
            ssl_keyfile=str(self.certs.client_key),
            decode_responses=True,
            socket_connect_timeout=2,
        )
