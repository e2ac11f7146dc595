"""Secured services for the security tests: throwaway certificates, fronts that add TLS or
a SASL login before the embedded broker, a broker that demands SASL, a Redis on TLS only.

The embedded broker (Tansu 0.6.0) serves no TLS and lets no SASL user in (its ``--cert`` and
``--key`` are mutually exclusive and neither switches the listener to TLS; a SCRAM user can
only be created by a logged-in client; see docs/RELIABILITY.md). So ``TlsFront`` terminates
TLS and ``SaslFront`` runs Kafka's SASL exchange before it: the worker's clients still make a
real TLS handshake (verifying the certificate, presenting theirs) and a real PLAIN or SCRAM
login, then every byte goes through to the broker. The broker advertises the outermost
front's address, so no client can reach it around them, and the fronts count what a client
without the right options would do (a failed handshake, a request before logging in).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import secrets
import ssl
import struct
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Self

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


class _Front:
    """A listener on its own port, run on a private event loop thread, in front of a
    plaintext broker port; subclasses decide what a connection must do to get through."""

    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = free_port(host)
        self.target_port = target_port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"kafka://{self.host}:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        listen = asyncio.start_server(self._relay, self.host, self.port)
        self._server = asyncio.run_coroutine_threadsafe(listen, self._loop).result(5)
        return self

    async def _relay(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        raise NotImplementedError

    async def _connect_broker(
        self, client_out: asyncio.StreamWriter
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        try:
            return await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            client_out.close()
            return None

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)


class TlsFront(_Front):
    """Accepts TLS (client certificate required) and forwards the decrypted bytes. Counts
    the connections that failed the TLS handshake: a client that connects without TLS, or
    without the client certificate, shows up there."""

    def __init__(self, certs: Certs, target_port: int, host: str = "127.0.0.1") -> None:
        super().__init__(target_port, host)
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=certs.ca)
        self.context.load_cert_chain(certs.server_cert, certs.server_key)
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.handshakes = 0
        self.handshake_failures = 0

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
        broker = await self._connect_broker(client_out)
        if broker is not None:
            await asyncio.gather(_pipe(client_in, broker[1]), _pipe(broker[0], client_out))


class SaslFront(_Front):
    """Kafka's SASL exchange (SaslHandshake v0-1, SaslAuthenticate v0-1) for PLAIN and
    SCRAM-SHA-256/512 (RFC 5802, salted and iterated as Kafka stores them), then the bytes
    go through to the broker. ApiVersions is forwarded before authentication, as a SASL
    listener answers it; any other request before it closes the connection (counted)."""

    def __init__(self, users: dict[str, str], target_port: int, host: str = "127.0.0.1") -> None:
        super().__init__(target_port, host)
        self.users = users
        self.authenticated = 0
        self.refused = 0
        self.unauthenticated_requests = 0

    async def _relay(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        broker = await self._connect_broker(client_out)
        if broker is None:
            return
        broker_in, broker_out = broker
        try:
            let_in = await self._authenticate(client_in, client_out, broker_in, broker_out)
        except (OSError, asyncio.IncompleteReadError, ValueError, struct.error):
            let_in = False
        if not let_in:
            client_out.close()
            broker_out.close()
            return
        self.authenticated += 1
        await asyncio.gather(_pipe(client_in, broker_out), _pipe(broker_in, client_out))

    async def _authenticate(
        self,
        client_in: asyncio.StreamReader,
        client_out: asyncio.StreamWriter,
        broker_in: asyncio.StreamReader,
        broker_out: asyncio.StreamWriter,
    ) -> bool:
        mechanism: str | None = None
        scram: _ScramServer | None = None
        while True:
            frame = await _read_frame(client_in)
            api_key, version, correlation_id = struct.unpack_from(">hhi", frame)
            (client_id_len,) = struct.unpack_from(">h", frame, 8)
            body = frame[10 + max(client_id_len, 0) :]
            if api_key == _API_VERSIONS:
                broker_out.write(struct.pack(">i", len(frame)) + frame)
                await broker_out.drain()
                answer = await _read_frame(broker_in)
                client_out.write(struct.pack(">i", len(answer)) + answer)
            elif api_key == _SASL_HANDSHAKE and version <= 1:
                mechanism = _read_string(body, 0)[0]
                error = 0 if mechanism in SASL_MECHANISMS else _UNSUPPORTED_SASL_MECHANISM
                mechanisms = b"".join(_string(m) for m in SASL_MECHANISMS)
                payload = struct.pack(">hi", error, len(SASL_MECHANISMS)) + mechanisms
                _answer(client_out, correlation_id, payload)
                if error:
                    return False
            elif api_key == _SASL_AUTHENTICATE and version <= 1 and mechanism is not None:
                (size,) = struct.unpack_from(">i", body)
                token = body[4 : 4 + size]
                if mechanism == "PLAIN":
                    reply, done = self._plain(token), True
                else:
                    scram = scram or _ScramServer(mechanism, self.users)
                    reply, done = scram.step(token)
                if reply is None:
                    self.refused += 1
                    message = f"Authentication failed: invalid credentials with SASL {mechanism}"
                    _answer(client_out, correlation_id, _auth_response(version, b"", message))
                    await client_out.drain()
                    return False
                _answer(client_out, correlation_id, _auth_response(version, reply, None))
                if done:
                    await client_out.drain()
                    return True
            else:
                self.unauthenticated_requests += 1
                return False
            await client_out.drain()

    def _plain(self, token: bytes) -> bytes | None:
        _authzid, user, password = token.decode().split("\0")
        return b"" if self.users.get(user) == password else None


SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
SCRAM_ITERATIONS = 4096
_API_VERSIONS, _SASL_HANDSHAKE, _SASL_AUTHENTICATE = 18, 17, 36
_UNSUPPORTED_SASL_MECHANISM, _SASL_AUTHENTICATION_FAILED = 33, 58


class _ScramServer:
    """The server side of one SCRAM exchange: two client messages, two answers."""

    def __init__(self, mechanism: str, users: dict[str, str]) -> None:
        self.hash = "sha256" if mechanism == "SCRAM-SHA-256" else "sha512"
        self.users = users
        self.salt = secrets.token_bytes(16)
        self.first_bare = self.server_first = ""
        self.salted: bytes | None = None

    def _hmac(self, key: bytes, message: bytes) -> bytes:
        return hmac.new(key, message, self.hash).digest()

    def step(self, token: bytes) -> tuple[bytes | None, bool]:
        message = token.decode()
        if not self.first_bare:
            self.first_bare = message.split(",", 2)[2]  # after the gs2 header "n,,"
            fields = dict(part.split("=", 1) for part in self.first_bare.split(","))
            password = self.users.get(fields["n"])
            if password is None:
                return None, True
            self.salted = hashlib.pbkdf2_hmac(
                self.hash, password.encode(), self.salt, SCRAM_ITERATIONS
            )
            nonce = fields["r"] + secrets.token_urlsafe(18)
            salt = base64.b64encode(self.salt).decode()
            self.server_first = f"r={nonce},s={salt},i={SCRAM_ITERATIONS}"
            return self.server_first.encode(), False
        assert self.salted is not None
        without_proof, proof = message.rsplit(",p=", 1)
        auth_message = f"{self.first_bare},{self.server_first},{without_proof}".encode()
        stored_key = hashlib.new(self.hash, self._hmac(self.salted, b"Client Key")).digest()
        signature = self._hmac(stored_key, auth_message)
        client_key = bytes(a ^ b for a, b in zip(base64.b64decode(proof), signature, strict=True))
        if not hmac.compare_digest(hashlib.new(self.hash, client_key).digest(), stored_key):
            return None, True
        server_signature = self._hmac(self._hmac(self.salted, b"Server Key"), auth_message)
        return b"v=" + base64.b64encode(server_signature), True


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    (size,) = struct.unpack(">i", await reader.readexactly(4))
    return await reader.readexactly(size)


def _read_string(data: bytes, offset: int) -> tuple[str, int]:
    (size,) = struct.unpack_from(">h", data, offset)
    return data[offset + 2 : offset + 2 + size].decode(), offset + 2 + size


def _string(value: str) -> bytes:
    data = value.encode()
    return struct.pack(">h", len(data)) + data


def _auth_response(version: int, token: bytes, error: str | None) -> bytes:
    code = _SASL_AUTHENTICATION_FAILED if error else 0
    message = _string(error) if error else struct.pack(">h", -1)
    payload = struct.pack(">h", code) + message + struct.pack(">i", len(token)) + token
    return payload + (struct.pack(">q", 0) if version >= 1 else b"")


def _answer(writer: asyncio.StreamWriter, correlation_id: int, payload: bytes) -> None:
    """A response with header v0 (correlation id only): what non-flexible versions use."""
    writer.write(struct.pack(">ii", len(payload) + 4, correlation_id) + payload)


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
