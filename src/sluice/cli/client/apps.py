"""``sluice apps``: the apps of the logged-in account's default (or a chosen) workspace."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from sluice.cli.client.config import load
from sluice.cli.client.http import client, raise_for


def list_apps(workspace_id: str | None = None) -> list[dict[str, object]]:
    config = load()
    workspace = workspace_id or config.default_workspace_id
    if not workspace:
        raise SystemExit("No workspace: pass --workspace ID.")
    rows: list[dict[str, object]] = []
    with client(config) as http:
        page = 1
        while True:
            response = http.get("/apps", params={"workspace_id": workspace, "page": page, "limit": 200})
            raise_for(response)
            body = response.json()
            rows.extend(body["data"])
            if not body["has_more"]:
                break
            page += 1
    return rows


def print_apps(rows: list[dict[str, object]]) -> None:
    table = Table(title="Apps", show_lines=False)
    for column in ("id", "name", "mode", "updated"):
        table.add_column(column)
    for row in rows:
        table.add_row(str(row["id"]), str(row["name"]), str(row["mode"]), str(row.get("updated_at") or ""))
    Console(width=140).print(table)
