"""The spec's fixture on a live server (real ``sluice serve`` processes), built through the CLI
(``accounts create``, ``apps import --workspace``), the console API and the device flow."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.servers import LiveServer
from tests.support.services import unique_name

FIXTURES = Path(__file__).parent.parent / "fixtures"
OWN_FIXTURES = Path(__file__).parent / "fixtures"
PASSWORD = "correct horse battery"


@dataclass
class LiveWorld:
    server: LiveServer
    ann_email: str
    bob_email: str
    ann_id: str
    bob_id: str
    w: str
    w2: str
    a: str
    c: str
    d: str
    e: str
    slow: str
    ann_token: str
    bob_token: str

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.server.base_url, headers=headers, timeout=60)


def last_line(result: Any) -> str:
    return str(result.stdout.strip().splitlines()[-1])


def console(server: LiveServer, email: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=server.base_url, timeout=30)
    resp = client.post("/console/api/login", json={"email": email, "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    return client, str(resp.json()["csrf_token"])


def approve(server: LiveServer, email: str, user_code: str, action: str = "approve") -> None:
    client, csrf = console(server, email)
    try:
        resp = client.post(
            f"/openapi/v1/oauth/device/{action}",
            json={"user_code": user_code},
            headers={"X-CSRF-Token": csrf},
        )
    finally:
        client.close()
    assert resp.status_code == 200, resp.text


def device_login(server: LiveServer, email: str, label: str) -> dict[str, Any]:
    with httpx.Client(base_url=server.base_url + "/openapi/v1/oauth/device", timeout=30) as device:
        code = device.post("/code", json={"client_id": "difyctl", "device_label": label}).json()
        approve(server, email, code["user_code"])
        resp = device.post("/token", json={"device_code": code["device_code"], "client_id": "difyctl"})
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def build_live_world(server: LiveServer) -> LiveWorld:
    w_name, w2_name = unique_name("W"), unique_name("W2")
    ann_email, bob_email = f"{unique_name('ann')}@example.com", f"{unique_name('bob')}@example.com"
    ann_id = last_line(
        server.cli(
            "accounts", "create", ann_email, "--password", PASSWORD, "--workspace", w_name, "--name", "Ann"
        )
    )
    bob_id = last_line(
        server.cli(
            "accounts", "create", bob_email, "--password", PASSWORD, "--workspace", w2_name, "--name", "Bob"
        )
    )

    def imported(path: Path, workspace: str) -> str:
        return last_line(server.cli("apps", "import", str(path), "--workspace", workspace))

    a = imported(FIXTURES / "app_a.yml", w_name)
    c = imported(FIXTURES / "chat_c.yml", w_name)
    d = imported(FIXTURES / "app_a.yml", w_name)
    slow = imported(OWN_FIXTURES / "slow.yml", w_name)
    e = imported(FIXTURES / "app_a.yml", w2_name)
    client, csrf = console(server, ann_email)
    try:
        resp = client.post(
            f"/console/api/apps/{d}/api-enable", json={"enable_api": False}, headers={"X-CSRF-Token": csrf}
        )
    finally:
        client.close()
    assert resp.status_code == 200, resp.text
    ann = device_login(server, ann_email, "difyctl on h1")
    bob = device_login(server, bob_email, "difyctl on h1")
    return LiveWorld(
        server,
        ann_email,
        bob_email,
        ann_id,
        bob_id,
        ann["default_workspace_id"],
        bob["default_workspace_id"],
        a,
        c,
        d,
        e,
        slow,
        ann["token"],
        bob["token"],
    )
