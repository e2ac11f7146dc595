"""``rcr dev``: the whole product on one machine, on its embedded defaults.

Starts what is missing (a broker where ``RCR_BROKER`` points, a Redis where
``RCR_REDIS_URL`` points), then a worker and a simulator, prints where to look, and on
Ctrl-C stops everything it started, in order. Ports come from the URLs, so two stacks run
side by side with different ``RCR_*`` values.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from urllib.parse import urlsplit

import click
import redis

from stream.cli.options import settings_options
from stream.embedded import EmbeddedBroker, EmbeddedRedis, is_listening
from stream.settings import Settings, env_name, redacted_url
from stream.sinks.redis_projection import redis_tls_options

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
# Group timings for a broker on this machine: start-up in seconds, not half a minute.
EMBEDDED_TIMINGS = {
    "broker_session_timeout": "3",
    "broker_heartbeat_interval": "0.5",
    "commit_interval": "1",
}
DEV_CUSTOMERS = 20_000


@click.command()
@settings_options
@click.option("--no-simulate", is_flag=True, help="start no simulated traffic")
@click.option(
    "--rate", type=float, default=20.0, show_default=True, help="simulated contacts per second"
)
def dev(settings: Settings, no_simulate: bool, rate: float) -> None:
    """Broker, Redis, a worker and simulated traffic: the product, locally."""
    with contextlib.ExitStack() as stack:
        overrides: dict[str, str] = {}
        if _start_broker_if_missing(settings, stack):
            overrides.update(
                {k: v for k, v in EMBEDDED_TIMINGS.items() if env_name(k) not in os.environ}
            )
        _start_redis_if_missing(settings, stack)
        if settings.customer_base is None and not no_simulate:
            overrides["customer_base"] = str(DEV_CUSTOMERS)
        if env_name("log_level") not in os.environ:
            overrides["log_level"] = "warning"  # keep the terminal for the banner and errors
        env = _child_env(settings, overrides)
        children = [_spawn(["worker"], env)]
        if not no_simulate:
            children.append(
                _spawn(["simulate", "--rate", str(rate), "--customers", str(DEV_CUSTOMERS)], env)
            )
        with _terminated_on_exit(children):
            _supervise(settings, children)


def _start_broker_if_missing(settings: Settings, stack: contextlib.ExitStack) -> bool:
    host, port = settings.broker_host_port
    if is_listening(host, port):
        click.echo(f"broker: using the one at {settings.broker}")
        return False
    _require_local(host, "RCR_BROKER", settings.broker)
    click.echo(f"broker: starting an embedded broker at {host}:{port} (memory only)")
    stack.enter_context(EmbeddedBroker(host, port))
    return True


def _start_redis_if_missing(settings: Settings, stack: contextlib.ExitStack) -> None:
    parts = urlsplit(settings.redis_url)
    host, port = parts.hostname or "localhost", parts.port or 6379
    if is_listening(host, port):
        click.echo(f"redis: using the one at {host}:{port}")
        return
    _require_local(host, "RCR_REDIS_URL", redacted_url(settings.redis_url))
    click.echo(f"redis: starting an embedded Redis at {host}:{port}")
    stack.enter_context(EmbeddedRedis(host, port, password=parts.password))


def _require_local(host: str, variable: str, url: str) -> None:
    if host not in LOCAL_HOSTS:
        raise click.ClickException(
            f"{variable}: nothing answers at {url}, and only a local "
            "address can get an embedded service"
        )


def _child_env(settings: Settings, overrides: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        if value is not None:
            secret = getattr(value, "get_secret_value", None)
            env[env_name(name)] = str(secret() if secret else value)
    env.update({env_name(name): value for name, value in overrides.items()})
    return env


def _spawn(arguments: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    # Own process group: Ctrl-C reaches us only, and we stop the children in order.
    return subprocess.Popen(
        [sys.executable, "-m", "stream", *arguments], env=env, start_new_session=True
    )


@contextlib.contextmanager
def _terminated_on_exit(children: list[subprocess.Popen[bytes]]) -> Iterator[None]:
    try:
        yield
    finally:
        for child in reversed(children):  # simulator first, the worker commits last
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in reversed(children):
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()


def _supervise(settings: Settings, children: list[subprocess.Popen[bytes]]) -> None:
    base = f"http://localhost:{settings.web_port}"
    announced = False
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` or a supervisor: stop like Ctrl-C
    try:
        while all(child.poll() is None for child in children):
            if not announced and _ready(base):
                _announce(settings, base)
                announced = True
            time.sleep(1)
    except KeyboardInterrupt:
        click.echo("\nstopping ...")
        return
    failed = [child.args for child in children if child.poll() not in (None, 0)]
    if failed:
        raise click.ClickException(f"stopped: a child process exited: {failed}")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/readyz", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _announce(settings: Settings, base: str) -> None:
    sample = _sample_customer(settings)
    lines = [
        "",
        "rcr-stream is running. Where to look:",
        f"  metrics   {base}/metrics",
        f"  rates     {base}/rates",
        f"  ready     {base}/readyz",
    ]
    if sample:
        lines.append(f"  lookup    {_rcr()} lookup {sample}   (or {base}/customers/{sample})")
    lines.append(f"  live      {_rcr()} top")
    lines += ["Ctrl-C stops everything this command started.", ""]
    click.echo("\n".join(lines))


def _rcr() -> str:
    """How to call ``rcr`` from this shell: ``make run`` does not put the venv on PATH."""
    beside_python = os.path.join(os.path.dirname(sys.executable), "rcr")
    on_path = shutil.which("rcr")
    if on_path and os.path.realpath(on_path) == os.path.realpath(beside_python):
        return "rcr"
    return os.path.relpath(beside_python) if os.path.exists(beside_python) else "rcr"


def _sample_customer(settings: Settings) -> str | None:
    """A customer id that has a lookup by now, to make the printed example real."""
    prefix = f"{settings.redis_prefix}customer:"
    try:
        client = redis.Redis.from_url(
            settings.redis_url, socket_connect_timeout=1, **redis_tls_options(settings)
        )
        for _ in range(10):
            for key in client.scan_iter(match=f"{prefix}*", count=100):
                return key.decode().removeprefix(prefix)
            time.sleep(0.5)
    except (redis.RedisError, OSError):
        return None
    return None
