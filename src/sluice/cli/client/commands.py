"""Typer commands of the client side: ``sluice login``, ``sluice apps`` (no subcommand), ``sluice run``."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

err = Console(stderr=True)


def register(app: typer.Typer, apps_app: typer.Typer) -> None:
    @app.command("login")
    def login_command(
        url: Annotated[str, typer.Argument(help="The Sluice server, e.g. http://127.0.0.1:5001")],
        label: Annotated[str | None, typer.Option(help="Device label (default: sluice on <host>)")] = None,
        browser: Annotated[
            bool | None, typer.Option(help="Open the browser (default: when on a terminal)")
        ] = None,
    ) -> None:
        """Log in with the device flow; stores the host and token in the user's config directory."""
        from sluice.cli.client.http import ApiError
        from sluice.cli.client.login import LoginFailed, login

        try:
            login(url, label=label, open_browser=browser)
        except (LoginFailed, ApiError) as exc:
            err.print(f"[red]login failed:[/red] {exc}")
            raise typer.Exit(1) from exc

    @apps_app.callback(invoke_without_command=True)
    def apps_callback(
        ctx: typer.Context,
        workspace: Annotated[
            str | None, typer.Option(help="Workspace id (default: your default one)")
        ] = None,
    ) -> None:
        """Workflow apps. Without a subcommand: list the apps of the logged-in account."""
        if ctx.invoked_subcommand is not None:
            return
        from sluice.cli.client.apps import list_apps, print_apps
        from sluice.cli.client.config import NotLoggedIn
        from sluice.cli.client.http import ApiError

        try:
            print_apps(list_apps(workspace))
        except (NotLoggedIn, ApiError) as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from exc

    @app.command("run")
    def run_command(
        app_ref: Annotated[str, typer.Argument(metavar="APP", help="App id, or its name in the workspace")],
        inputs: Annotated[
            list[str] | None, typer.Option("--input", "-i", help="k=v (string) or k:=<json>; repeatable")
        ] = None,
        workspace: Annotated[
            str | None, typer.Option(help="Workspace id (default: your default one)")
        ] = None,
    ) -> None:
        """Run an app, show node progress live, print the outputs as JSON last (exit 1 unless it succeeds)."""
        from sluice.cli.client.config import NotLoggedIn
        from sluice.cli.client.http import ApiError
        from sluice.cli.client.run import parse_inputs, run

        try:
            view = run(app_ref, parse_inputs(inputs or []), workspace)
        except (NotLoggedIn, ApiError, ValueError) as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from exc
        print(
            json.dumps(
                {"status": view.status, "outputs": view.outputs, "error": view.error}, ensure_ascii=False
            )
        )
        if view.status != "succeeded":
            raise typer.Exit(1)
