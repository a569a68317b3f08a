"""Device-flow login in headless Chromium (openapi-user.md §7, scenario 3; issue 8 must-show 2).

``sluice login`` prints a user code; the browser opens the verification URL, is sent to sign in,
enters the code (lower case, no hyphen), sees the device label and approves; the CLI receives its
token and ``sluice run`` streams a run to the end. A second login is denied in the browser.
Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.openapi_user.live import PASSWORD, LiveWorld, build_live_world
from tests.support.servers import LiveServer, sluice_cmd

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CODE_LINE = re.compile(r"Open (\S+) and enter the code: ([A-Z0-9]{4}-[A-Z0-9]{4})")
pytestmark = pytest.mark.parametrize("live_server", ["embedded"], indirect=True)


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield instance
        finally:
            instance.close()


def start_login(world: LiveWorld, home: Path, label: str) -> tuple[subprocess.Popen[str], str, str]:
    proc = subprocess.Popen(
        sluice_cmd("login", world.server.base_url, "--label", label, "--no-browser"),
        env={**world.server.env, "XDG_CONFIG_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    match = CODE_LINE.search(proc.stdout.readline())
    assert match, "sluice login printed no user code"
    return proc, match.group(1), match.group(2)


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"device-login-{name}.png"), full_page=True)


def enter_code(page: Page, code: str) -> None:
    page.fill("input[name=user_code]", code.replace("-", "").lower())
    page.click("#continue-button")
    page.wait_for_selector("#approve-button")


def test_browser_approves_and_denies(live_server: LiveServer, browser: Browser, tmp_path: Path) -> None:
    world = build_live_world(live_server)
    home = tmp_path / "config"
    proc, uri, code = start_login(world, home, "difyctl on h1")
    page = browser.new_page()
    page.goto(uri)
    assert "/login" in page.url
    shot(page, "1-sign-in")
    page.fill("input[name=email]", world.ann_email)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-button")
    page.wait_for_selector("#device-code-form")
    assert page.url.split("?")[0].endswith("/device")
    enter_code(page, code)
    assert page.inner_text("#device-label") == "difyctl on h1"
    assert page.inner_text("#device-client-id") == "difyctl"
    assert page.inner_text("#device-account") == world.ann_email
    shot(page, "2-confirm")
    page.click("#approve-button")
    result = page.wait_for_selector("#device-result")
    assert result is not None and result.get_attribute("data-status") == "approved"
    assert "Device authorized" in result.inner_text()
    shot(page, "3-approved")
    _, errs = proc.communicate(timeout=60)
    assert proc.returncode == 0, errs
    config = json.loads((home / "sluice" / "config.json").read_text())
    assert config["token"].startswith("dfoa_")

    ran = subprocess.run(
        sluice_cmd("run", world.a, "--input", "query=hi"),
        env={**world.server.env, "XDG_CONFIG_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout.strip().splitlines()[-1])["outputs"] == {"text": "You said hi"}

    denied_home = tmp_path / "denied"
    proc, _, code = start_login(world, denied_home, "difyctl on h2")
    page.goto(world.server.base_url + "/device")
    enter_code(page, code)
    page.click("#deny-button")
    result = page.wait_for_selector("#device-result")
    assert result is not None and result.get_attribute("data-status") == "denied"
    shot(page, "4-denied")
    _, errs = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "denied" in errs

    page.goto(world.server.base_url + "/device?user_code=ZZZZ-ZZZZ")
    assert "invalid or has expired" in page.inner_text("#device-error")
    page.close()
