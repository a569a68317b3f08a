"""``sluice run APP --input k=v``: start a run and follow its stream with a live view.

Node progress and streamed text render on stderr (Rich Live); the final outputs go to stdout as
JSON. A dropped connection is resumed from the last event id through the task-events endpoint.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from sluice.cli.client.config import ClientConfig, load
from sluice.cli.client.forms import answer
from sluice.cli.client.http import ApiError, client, raise_for

err = Console(stderr=True)
MAX_RECONNECTS = 10


def parse_inputs(pairs: list[str]) -> dict[str, Any]:
    """``k=v`` gives a string, ``k:=<json>`` a JSON value."""
    inputs: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--input expects k=v or k:=json, got {pair!r}")
        if key.endswith(":"):
            inputs[key[:-1]] = json.loads(value)
        else:
            inputs[key] = value
    return inputs


@dataclass
class Frame:
    id: str | None
    event: str | None
    data: dict[str, Any] | None


def frames(lines: Iterator[str]) -> Iterator[Frame]:
    """Server-Sent Events from a line iterator (LF-separated; blank line ends a frame)."""
    event_id: str | None = None
    event: str | None = None
    data: list[str] = []
    for line in lines:
        if line == "":
            if data or event:
                payload = json.loads("\n".join(data)) if data else None
                yield Frame(event_id, event, payload)
            event_id, event, data = None, None, []
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "id":
            event_id = value
        elif name == "event":
            event = value
        elif name == "data":
            data.append(value)


@dataclass
class RunView:
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    text: str = ""
    status: str = "running"
    outputs: dict[str, Any] | None = None
    error: str | None = None
    reconnects: int = 0

    def apply(self, payload: dict[str, Any]) -> None:
        event, data = payload.get("event"), payload.get("data") or {}
        if event in ("node_started", "node_finished"):
            key = data.get("id") or data.get("node_id")
            row = self.nodes.setdefault(str(key), {"title": data.get("title"), "type": data.get("node_type")})
            row["status"] = data.get("status") or "running"
            if data.get("elapsed_time") is not None:
                row["elapsed"] = data["elapsed_time"]
        elif event == "text_chunk":
            self.text += str(data.get("text", ""))
        elif event == "workflow_finished":
            self.status = str(data.get("status"))
            self.outputs = data.get("outputs") or {}
            self.error = data.get("error")

    def render(self) -> Group:
        table = Table(
            title=f"run: {self.status}" + (f" (reconnected {self.reconnects}x)" if self.reconnects else "")
        )
        for column in ("node", "type", "status", "elapsed"):
            table.add_column(column)
        for row in self.nodes.values():
            elapsed = f"{row['elapsed']:.3f}s" if isinstance(row.get("elapsed"), int | float) else ""
            table.add_row(str(row.get("title")), str(row.get("type")), str(row.get("status")), elapsed)
        parts: list[Any] = [table]
        if self.text:
            parts.append(Text(self.text))
        if self.error:
            parts.append(Text(f"error: {self.error}", style="red"))
        return Group(*parts)


def resolve_app(http: httpx.Client, ref: str, workspace_id: str | None) -> str:
    try:
        uuid.UUID(ref)
        return ref
    except ValueError:
        pass
    params: dict[str, Any] = {"fields": "info"}
    if workspace_id:
        params["workspace_id"] = workspace_id
    response = http.get(f"/apps/{ref}/describe", params=params)
    raise_for(response)
    return str(response.json()["info"]["id"])


def run(app_ref: str, inputs: dict[str, Any], workspace_id: str | None = None) -> RunView:
    config = load()
    workspace = workspace_id or config.default_workspace_id
    view = RunView()
    with client(config, timeout=60) as http:
        app_id = resolve_app(http, app_ref, workspace)
        with Live(view.render(), console=err, refresh_per_second=8, transient=False) as live:
            _follow(http, config, app_id, inputs, view, live)
    return view


def _follow(
    http: httpx.Client, config: ClientConfig, app_id: str, inputs: dict[str, Any], view: RunView, live: Live
) -> None:
    task_id: str | None = None
    last_id: str | None = None
    attempt = 0
    waiting: list[dict[str, Any]] = []
    answered = False
    while True:
        try:
            if task_id is None:
                request = http.build_request("POST", f"/apps/{app_id}/run", json={"inputs": inputs})
            else:
                headers = {"Last-Event-ID": last_id} if last_id else {}
                request = http.build_request("GET", f"/apps/{app_id}/tasks/{task_id}/events", headers=headers)
            response = http.send(request, stream=True)
            try:
                if response.status_code >= 400:
                    response.read()
                    raise_for(response)
                for frame in frames(response.iter_lines()):
                    if frame.data is None:
                        continue
                    if frame.id:
                        last_id = frame.id
                    task_id = task_id or frame.data.get("task_id")
                    view.apply(frame.data)
                    live.update(view.render())
                    if frame.data.get("event") == "workflow_finished":
                        return
                    if frame.data.get("event") == "human_input_required":
                        waiting.append(frame.data.get("data") or {})
                    if frame.data.get("event") == "workflow_paused":  # human input (human-input.md §11)
                        live.stop()
                        for form in waiting:
                            answer(http, config.host, app_id, form)
                        waiting.clear()
                        live.start()
                        answered = True
                        break
            finally:
                response.close()
            if answered:  # keep streaming the resumed run from where the pause left off
                answered = False
                continue
        except (httpx.TransportError, httpx.DecodingError) as exc:
            if task_id is None:
                raise ApiError(0, f"connection lost before the run started: {exc}") from exc
        if task_id is None:
            raise ApiError(0, "the stream ended before the run started")
        attempt += 1
        if attempt > MAX_RECONNECTS:
            raise ApiError(0, "the stream kept dropping; giving up")
        view.reconnects += 1
        err.log(f"stream dropped; resuming after {last_id or 'the start'}")
        time.sleep(min(0.2 * 2**attempt, 5))
