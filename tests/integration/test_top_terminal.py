"""``rcr top`` in a real terminal: tmux runs it against a real worker, we read the screen.

tmux gives the program a real pseudo-terminal (alternate screen, cursor control, UTF-8),
which a captured stdout does not; ``capture-pane -p`` returns what a person would see.
Each test uses a private tmux server (``-L``) so it never touches anyone's sessions.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stream.embedded import free_port
from stream.top.render import ago, percent
from tests.conftest import in_ci
from tests.integration.test_worker import eventually
from tests.integration.traffic import contact_records, produce, safe_now_ms
from tests.integration.workers import Stack, WorkerProcess

pytestmark = pytest.mark.integration
WIDTH, HEIGHT = 150, 50
EXITED = re.compile(r"rcr top exited with (\d+)")
# The command object, whether or not `rcr` has registered it yet: `python -c` passes the
# remaining arguments to click through sys.argv.
TOP = [sys.executable, "-c", "from stream.cli.top import top; top()"]


def tmux_binary() -> str:
    """tmux's path; skip locally, fail on CI (a skipped terminal test proves nothing)."""
    path = shutil.which("tmux")
    if path is not None:
        return path
    message = "tmux is not installed (Debian: apt-get install -y tmux, or `make install`)"
    if in_ci():
        pytest.fail(f"CI=true and a test dependency is missing: {message}", pytrace=False)
    pytest.skip(message)


@dataclass
class Tmux:
    """One private tmux server with one window running one command."""

    binary: str
    config: Path
    socket: str = ""

    def __post_init__(self) -> None:
        self.socket = f"rcr-top-{uuid.uuid4().hex[:8]}"
        self.config.write_text("set -g status off\n")  # the whole height for rcr top

    def tmux(self, *args: str) -> str:
        command = [self.binary, "-u", "-L", self.socket, "-f", str(self.config), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=True)
        return done.stdout

    def start(self, command: list[str]) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RCR_", "TMUX"))}
        env.update({"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONIOENCODING": "utf-8"})
        # bash reports the exit status itself: it waits for its child on Ctrl-C and carries on
        # when the child handled SIGINT, and tmux does not always reap a pane's process in time
        # for #{pane_dead_status}.
        line = f'{shlex.join(command)}; echo "rcr top exited with $?"; sleep 60'
        line = shlex.join(["bash", "-c", line])
        args = ["new-session", "-d", "-s", "top", "-x", str(WIDTH), "-y", str(HEIGHT), line]
        subprocess.run(
            [self.binary, "-u", "-L", self.socket, "-f", str(self.config), *args],
            env=env,
            cwd=Path(__file__).resolve().parents[2],
            check=True,
            timeout=10,
        )

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "top")

    def wait_for(self, check: Callable[[str], bool], timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if check(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"screen never matched; last capture:\n{screen}")
            time.sleep(0.3)

    def exit_status(self, timeout: float = 10.0) -> int:
        """The program's exit status, as the wrapping bash printed it after Ctrl-C."""
        screen = self.wait_for(lambda text: EXITED.search(text) is not None, timeout)
        found = EXITED.search(screen)
        assert found is not None
        return int(found.group(1))

    def kill_server(self) -> None:
        """Stop the private server and remove its socket file, which tmux leaves behind."""
        try:
            socket_path = self.tmux("display", "-p", "#{socket_path}").strip()
        except subprocess.SubprocessError:
            return  # never started
        subprocess.run(
            [self.binary, "-L", self.socket, "kill-server"], capture_output=True, timeout=10
        )
        Path(socket_path).unlink(missing_ok=True)


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    session = Tmux(tmux_binary(), tmp_path / "tmux.conf")
    yield session
    session.kill_server()


@pytest.fixture
def running(broker, redis_server, tmp_path) -> Iterator[tuple[Stack, WorkerProcess]]:
    stack = Stack(broker.url, redis_server.url, tmp_path)
    worker = stack.start_worker()
    yield stack, worker
    worker.kill()


def rates(worker: WorkerProcess) -> dict:
    status, body = worker.get("/rates")
    assert status == 200
    return json.loads(body)


def shows_the_workers_figures(worker: WorkerProcess, screen: str) -> bool:
    """The 1h row shows /rates' RCR and its repeat/customers counts, read just now."""
    one_hour = rates(worker)["cluster"]["1h"]
    row = next((line for line in screen.splitlines() if line.startswith("1h ")), "")
    counts = f"{one_hour['repeat_customers']:,}/{one_hour['customers']:,}"
    return (
        one_hour["customers"] > 0
        and percent(one_hour["repeat_contact_rate"]) in row
        and (counts in row)
    )


def freshness_now(worker: WorkerProcess) -> set[str]:
    """How old the newest event is by /metrics, give or take the capture's few seconds."""
    newest = worker.metrics()[("rcr_last_event_timestamp_seconds", ())]
    age = time.time() - newest
    return {ago(age + delta) for delta in range(-3, 2)}


def test_top_shows_live_figures_in_a_terminal_and_quits_on_ctrl_c(running, broker, tmux):
    stack, worker = running
    worker.wait_ready()
    produce(broker.bootstrap, stack.topic, contact_records(400, seed=66, now_ms=safe_now_ms()))
    eventually(lambda: rates(worker)["cluster"]["1h"]["contacts"] > 300, timeout=20)

    tmux.start([*TOP, "--url", worker.base, "--interval", "0.5"])
    screen = tmux.wait_for(lambda text: shows_the_workers_figures(worker, text))

    for window in ("1h", "24h", "7d", "30d", "day", "week", "month", "prev day"):
        assert re.search(rf"^{re.escape(window)} ", screen, re.MULTILINE), window
    shown = re.search(r"freshness (\d+[smhd]) ago", screen)
    assert shown and shown.group(1) in freshness_now(worker), screen
    assert "● READY" in screen and "lag " in screen and "dead letters 0" in screen
    assert "Channels" in screen and "Top repeat reasons" in screen
    assert re.search(r"[▁▂▃▄▅▆▇█]", screen)  # sparklines drawn in UTF-8, not mangled

    tmux.tmux("send-keys", "-t", "top", "C-c")
    assert tmux.exit_status() == 0
    assert "Traceback" not in tmux.screen()


def test_top_says_when_the_worker_is_unreachable(tmux):
    url = f"http://127.0.0.1:{free_port()}"
    tmux.start([*TOP, "--url", url, "--interval", "0.5"])
    screen = tmux.wait_for(lambda text: "worker unreachable" in text, timeout=10)
    assert f"worker unreachable at {url}, retrying every 0.5s" in screen
    assert "Traceback" not in screen
    tmux.tmux("send-keys", "-t", "top", "C-c")
    assert tmux.exit_status() == 0
