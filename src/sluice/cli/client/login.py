"""``sluice login URL``: the OAuth device flow (openapi-user.md §6) from the terminal.

Prints the verification URL and user code (and opens a browser when attached to a terminal),
then polls at the server's interval, doubling it on ``slow_down`` as difyctl does, until the
token arrives, the request is denied, or the code expires.
"""

from __future__ import annotations

import socket
import sys
import time
import webbrowser

import httpx
from rich.console import Console

from sluice.cli.client.config import ClientConfig, save
from sluice.cli.client.http import PREFIX, ApiError

CLIENT_ID = "difyctl"
err = Console(stderr=True)


class LoginFailed(Exception):
    pass


def default_label() -> str:
    return f"sluice on {socket.gethostname()}"


def login(url: str, *, label: str | None = None, open_browser: bool | None = None) -> ClientConfig:
    base = url.rstrip("/")
    with httpx.Client(base_url=base + PREFIX, timeout=30, headers={"User-Agent": "sluice-cli"}) as http:
        started = http.post(
            "/oauth/device/code", json={"client_id": CLIENT_ID, "device_label": label or default_label()}
        )
        if started.status_code == 404:
            raise LoginFailed(f"{base} has no device-flow login (404).")
        if started.status_code != 200:
            raise ApiError(started.status_code, _body(started))
        grant = started.json()
        print(f"Open {grant['verification_uri']} and enter the code: {grant['user_code']}", flush=True)
        if open_browser if open_browser is not None else sys.stdout.isatty():
            webbrowser.open(grant["verification_uri"])
        interval = float(grant.get("interval", 5))
        deadline = time.monotonic() + float(grant.get("expires_in", 900))
        body = {"device_code": grant["device_code"], "client_id": CLIENT_ID}
        while time.monotonic() < deadline:
            time.sleep(interval)
            try:
                polled = http.post("/oauth/device/token", json=body)
            except httpx.TransportError:
                continue
            if polled.status_code == 200:
                token = polled.json()
                config = ClientConfig(
                    host=base,
                    token=token["token"],
                    token_id=token.get("token_id"),
                    expires_at=token.get("expires_at"),
                    account=token.get("account") or {},
                    default_workspace_id=token.get("default_workspace_id"),
                    workspaces=token.get("workspaces") or [],
                )
                path = save(config)
                err.print(f"Logged in as {config.account.get('email')} (saved to {path})")
                return config
            if polled.status_code >= 500:
                continue
            answer = _body(polled)
            error = answer.get("error") if isinstance(answer, dict) else None
            if error == "authorization_pending":
                continue
            if error == "slow_down":
                interval *= 2
                continue
            if error == "access_denied":
                raise LoginFailed("The request was denied in the browser.")
            if error == "expired_token":
                raise LoginFailed("The code expired; run `sluice login` again.")
            raise ApiError(polled.status_code, _body(polled))
    raise LoginFailed("The code expired; run `sluice login` again.")


def _body(response: httpx.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return response.text
