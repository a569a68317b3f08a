"""``sluice run`` on a human-input app (human-input.md §11, scenario 31): in a pseudo-terminal it
shows the form, prompts, submits and streams to the end; without a terminal it prints the form URL
and exits 3 with the run still paused."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.human_input.harness import FIXTURES
from tests.openapi_user.live import PASSWORD
from tests.openapi_user.test_cli_client import cli, login
from tests.support.servers import LiveServer, sluice_cmd
from tests.support.services import unique_name

pytestmark = pytest.mark.parametrize("live_server", ["embedded"], indirect=True)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass
class World:
    """What the user-API login helper needs: a server and an account in its own workspace."""

    server: LiveServer
    ann_email: str
    workspace: str


@pytest.fixture(scope="module")
def world(live_server: LiveServer) -> World:
    workspace, email = unique_name("HW"), f"{unique_name('hitl')}@example.com"
    live_server.cli("accounts", "create", email, "--password", PASSWORD, "--workspace", workspace)
    return World(live_server, email, workspace)


class Terminal:
    """A child process on a pseudo-terminal; ``expect`` reads until a pattern shows up."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(args, env=env, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
        os.close(slave)
        self.seen = ""

    def expect(self, pattern: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not re.search(pattern, ANSI.sub("", self.seen)):
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not seen in:\n{ANSI.sub('', self.seen)[-3000:]}")
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    self.seen += os.read(self.master, 65536).decode(errors="replace")
                except OSError:
                    break

    def send(self, line: str) -> None:
        os.write(self.master, (line + "\r").encode())

    def wait(self, timeout: float = 90) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self.expect_any()
        return self.proc.wait(5)

    def expect_any(self) -> None:
        ready, _, _ = select.select([self.master], [], [], 0.2)
        if ready:
            try:
                self.seen += os.read(self.master, 65536).decode(errors="replace")
            except OSError:
                time.sleep(0.1)


def test_cli_prompts_submits_and_streams_to_the_end(world: World, tmp_path: Path) -> None:
    home = tmp_path / "config"
    assert login(world, home, "hitl cli").returncode == 0  # type: ignore[arg-type]
    fixture = str(FIXTURES / "review.yml")
    imported = world.server.cli("apps", "import", fixture, "--workspace", world.workspace)
    app = imported.stdout.strip().splitlines()[-1]
    env = {**world.server.env, "XDG_CONFIG_HOME": str(home), "COLUMNS": "200", "TERM": "dumb"}

    args = ("run", app, "--input", "author=Ann", "--input", "note=ok")
    no_tty = cli(world, home, *args)  # type: ignore[arg-type]
    assert no_tty.returncode == 3, no_tty.stderr
    assert re.search(r"/form/[A-Za-z0-9]{22}", no_tty.stderr)

    term = Terminal(sluice_cmd("run", app, "--input", "author=Ann", "--input", "note=ok"), env)
    term.expect("Review draft")
    term.expect(r"comment")
    term.send("from the terminal")
    term.expect(r"verdict")
    term.send("1")
    term.expect(r"Action")
    term.send("1")
    assert term.wait() == 0, ANSI.sub("", term.seen)[-3000:]
    result = json.loads(ANSI.sub("", term.seen).strip().splitlines()[-1])
    assert result["status"] == "succeeded"
    assert result["outputs"] == {"result": "approve: from the terminal"}
