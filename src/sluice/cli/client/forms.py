"""``sluice run`` on a paused run (human-input.md §11): show each form, prompt for its inputs and
action, submit through the user API's form route, and let the caller keep streaming.

Without a terminal the form URL is printed and the command exits 3 (the run stays paused);
Ctrl-C at a prompt exits 130 with the form still waiting.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.prompt import IntPrompt, Prompt

err = Console(stderr=True)
EXIT_NO_TTY = 3


def answer(http: httpx.Client, host: str, app_id: str, form: dict[str, Any]) -> None:
    """Prompt for one ``human_input_required`` form and submit it (400 → ask again)."""
    token = form.get("form_token")
    if not token:
        err.print(
            "[yellow]This form is answered elsewhere:[/yellow] "
            + ", ".join(form.get("approval_channels") or [])
        )
        raise typer.Exit(EXIT_NO_TTY)
    if not sys.stdin.isatty():
        err.print(f"The run is waiting for a human: {host.rstrip('/')}/form/{token}")
        raise typer.Exit(EXIT_NO_TTY)
    deadline = datetime.fromtimestamp(int(form.get("expiration_time") or 0), UTC)
    err.rule(str(form.get("node_title") or "Human input"))
    err.print(str(form.get("form_content") or ""))
    err.print(f"[dim]Answer before {deadline:%Y-%m-%d %H:%M} UTC[/dim]")
    try:
        while True:
            inputs = {item["output_variable_name"]: ask(item, form) for item in form.get("inputs") or []}
            actions = form.get("actions") or []
            for number, action in enumerate(actions, 1):
                err.print(f"  {number}. {action.get('title') or action.get('id')}")
            choice = IntPrompt.ask(
                "Action", console=err, choices=[str(i) for i in range(1, len(actions) + 1)]
            )
            body = {"action": actions[choice - 1]["id"], "inputs": inputs}
            response = http.post(f"/apps/{app_id}/form/human_input/{token}", json=body)
            if response.status_code == 200:
                return
            problem = response.json() if response.content else {}
            if response.status_code == 412:
                expired = problem.get("code") == "human_input_form_expired"
                err.print(
                    "This form has expired." if expired else "This form was already answered elsewhere."
                )
                return
            err.print(f"[red]{problem.get('message', response.status_code)}[/red]")
            if response.status_code != 400:
                return
    except (KeyboardInterrupt, EOFError) as exc:
        raise typer.Exit(130) from exc


def ask(item: dict[str, Any], form: dict[str, Any]) -> Any:
    name, kind = str(item.get("output_variable_name")), item.get("type")
    default = str((form.get("resolved_default_values") or {}).get(name, ""))
    if kind == "select":
        options = [str(o) for o in (item.get("option_source") or {}).get("value") or []]
        for number, option in enumerate(options, 1):
            err.print(f"  {number}. {option}")
        index = IntPrompt.ask(name, console=err, choices=[str(i) for i in range(1, len(options) + 1)])
        return options[index - 1]
    if kind in ("file", "file-list"):
        err.print(
            f"[yellow]{name}: file inputs are not supported in the terminal yet; "
            "answer on the web page[/yellow]"
        )
        return [] if kind == "file-list" else None
    value = Prompt.ask(f'{name} (""" for several lines)', console=err, default=default)
    if value != '"""':
        return value
    lines: list[str] = []
    while (line := input()) != '"""':
        lines.append(line)
    return "\n".join(lines)
