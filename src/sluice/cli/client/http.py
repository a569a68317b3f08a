"""A small HTTP client for the user API: bearer auth, error bodies turned into readable messages."""

from __future__ import annotations

from typing import Any

import httpx

from sluice.cli.client.config import ClientConfig

PREFIX = "/openapi/v1"


class ApiError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body
        if isinstance(body, dict):
            text = body.get("message") or body.get("error") or str(body)
            details = body.get("details") or []
            if details:
                text += (
                    " ("
                    + "; ".join(f"{'.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}" for d in details)
                    + ")"
                )
        else:
            text = str(body)
        super().__init__(f"{status}: {text}")


def raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    raise ApiError(response.status_code, body)


def client(config: ClientConfig, timeout: float = 30) -> httpx.Client:
    return httpx.Client(
        base_url=config.host.rstrip("/") + PREFIX,
        headers={"Authorization": f"Bearer {config.token}", "User-Agent": "sluice-cli"},
        timeout=timeout,
    )
