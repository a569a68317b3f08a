"""The client side of the CLI against a live server: ``sluice login`` (device flow, approved
through the console API), ``sluice apps``, ``sluice run`` (streamed, and resumed from the last
event id after a dropped connection), and the 0600 config file under ``$XDG_CONFIG_HOME``."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.openapi_user.cut_proxy import CutProxy
from tests.openapi_user.live import LiveWorld, approve, build_live_world
from tests.support.servers import LiveServer, sluice_cmd

CODE_LINE = re.compile(r"Open (\S+) and enter the code: ([A-Z0-9]{4}-[A-Z0-9]{4})")


@pytest.fixture(scope="module")
def world(live_server: LiveServer) -> LiveWorld:
    return build_live_world(live_server)


def login(world: LiveWorld, config_home: Path, label: str) -> subprocess.CompletedProcess[str]:
    env = {**world.server.env, "XDG_CONFIG_HOME": str(config_home)}
    proc = subprocess.Popen(
        sluice_cmd("login", world.server.base_url, "--label", label, "--no-browser"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = CODE_LINE.search(line)
    assert match, line
    assert match.group(1) == world.server.base_url + "/device"
    approve(world.server, world.ann_email, match.group(2))
    out, errs = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, line + out, errs)


def cli(world: LiveWorld, config_home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**world.server.env, "XDG_CONFIG_HOME": str(config_home), "COLUMNS": "200"}
    return subprocess.run(sluice_cmd(*args), env=env, capture_output=True, text=True, timeout=120)


def test_login_apps_run_and_resume(world: LiveWorld, tmp_path: Path) -> None:
    home = tmp_path / "config"
    done = login(world, home, "cli on test")
    assert done.returncode == 0, done.stderr
    path = home / "sluice" / "config.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    config = json.loads(path.read_text())
    assert config["host"] == world.server.base_url and config["token"].startswith("dfoa_")
    assert config["default_workspace_id"] == world.w and config["account"]["email"] == world.ann_email

    listed = cli(world, home, "apps")
    assert listed.returncode == 0, listed.stderr
    assert world.a in listed.stdout and world.c in listed.stdout and world.d not in listed.stdout

    ran = cli(world, home, "run", world.a, "--input", "query=hi", "--input", "count:=2")
    assert ran.returncode == 0, ran.stderr
    result = json.loads(ran.stdout.strip().splitlines()[-1])
    assert result == {"status": "succeeded", "outputs": {"text": "You said hi x2"}, "error": None}
    assert "End" in ran.stderr and "succeeded" in ran.stderr  # the live view's node table

    failed = cli(world, home, "run", world.a, "--input", "query=01234567890")
    assert failed.returncode == 1 and "less than 10 characters" in failed.stderr

    parts = urlsplit(world.server.base_url)
    proxy = CutProxy((parts.hostname or "127.0.0.1", parts.port or 80), marker=b"/run", cut_after=1200)
    try:
        config["host"] = proxy.url
        path.write_text(json.dumps(config))
        resumed = cli(world, home, "run", world.a, "--input", "query=again")
    finally:
        proxy.close()
    assert resumed.returncode == 0, resumed.stderr
    assert proxy.cuts == 1
    assert "resuming after" in resumed.stderr
    final = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert final["status"] == "succeeded" and final["outputs"] == {"text": "You said again"}


def test_login_denied_and_not_logged_in(world: LiveWorld, tmp_path: Path) -> None:
    home = tmp_path / "config"
    nothing = cli(world, home, "apps")
    assert nothing.returncode == 1 and "sluice login" in nothing.stderr
    env = {**world.server.env, "XDG_CONFIG_HOME": str(home)}
    proc = subprocess.Popen(
        sluice_cmd("login", world.server.base_url, "--no-browser"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    match = CODE_LINE.search(proc.stdout.readline())
    assert match
    approve(world.server, world.ann_email, match.group(2), action="deny")
    _, errs = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "denied" in errs
    assert not (home / "sluice" / "config.json").exists()
