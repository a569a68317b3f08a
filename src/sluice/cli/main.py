"""The ``sluice`` command line: server side (serve, worker, db, apps, keys, accounts, openapi) and
client side (login, apps, run; ``sluice.cli.client``).

Scripts depend on two outputs: ``apps import`` prints the app id and ``keys create`` the new key
as the last line of stdout; everything else goes to stderr.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from sluice.cli.client.commands import register as register_client_commands
from sluice.cli.providers import providers_app
from sluice.settings import Settings, load_settings

app = typer.Typer(help="Sluice: a self-hosted runtime for Dify workflow apps.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
apps_app = typer.Typer(help="Workflow apps.")
keys_app = typer.Typer(help="Service API keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(apps_app, name="apps")
app.add_typer(keys_app, name="keys")
accounts_app = typer.Typer(help="Console accounts.", no_args_is_help=True)
openapi_app = typer.Typer(help="OpenAPI documents.", no_args_is_help=True)
app.add_typer(accounts_app, name="accounts")
app.add_typer(openapi_app, name="openapi")
app.add_typer(providers_app, name="providers")
err = Console(stderr=True)


def _settings() -> Settings:
    try:
        return load_settings()
    except Exception as exc:  # pydantic's message names the setting
        err.print(f"[red]Invalid settings:[/red] {exc}")
        raise typer.Exit(2) from exc


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Migrate the database to the newest schema."""
    from sluice.adapters.sql.migrate import upgrade

    settings = _settings()
    upgrade(settings.sql_url, revision)
    err.print(f"database at revision {revision}")


@apps_app.command("import")
def apps_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    workspace: Annotated[str, typer.Option(help="Workspace name")] = "Default",
    allow_newer: Annotated[bool, typer.Option(help="Accept a DSL version newer than 0.7.x")] = False,
) -> None:
    """Validate and publish a Dify DSL file; prints the app id last."""
    from sluice.services.errors import DslInvalid

    async def run() -> str:
        from sluice.bootstrap import Container

        container = await Container.start(_settings(), role="cli")
        try:
            outcome = await container.apps.import_app(
                file.read_text(encoding="utf-8"), workspace=workspace, allow_newer=allow_newer
            )
        finally:
            await container.close()
        for finding in outcome.findings:
            err.print(f"[yellow]warning[/yellow] {finding['code']}: {finding['message']}")
        return outcome.app_id

    try:
        app_id = asyncio.run(run())
    except DslInvalid as exc:
        for finding in exc.findings:
            err.print(f"[red]error[/red] {finding['code']}: {finding['message']}")
        raise typer.Exit(1) from exc
    except UnicodeDecodeError as exc:
        err.print("[red]error[/red] dsl.yaml_invalid: the file is not UTF-8 text")
        raise typer.Exit(1) from exc
    print(app_id)


@keys_app.command("create")
def keys_create(app_id: str) -> None:
    """Mint a Service API key for an app; prints the key (shown once) last."""
    from sluice.services.errors import DomainError

    async def run() -> str:
        from sluice.bootstrap import Container

        container = await Container.start(_settings(), role="cli")
        try:
            return await container.apps.create_key(app_id)
        finally:
            await container.close()

    try:
        key = asyncio.run(run())
    except DomainError as exc:
        err.print(f"[red]error[/red] {exc.message}")
        raise typer.Exit(1) from exc
    print(key)


@accounts_app.command("create")
def accounts_create(
    email: str,
    password: Annotated[str, typer.Option(help="At least 8 characters")],
    workspace: Annotated[str, typer.Option(help="Workspace name (created if missing; then its owner)")],
    name: Annotated[str | None, typer.Option(help="Display name (default: the email's local part)")] = None,
    role: Annotated[str | None, typer.Option(help="Role when joining an existing workspace")] = None,
) -> None:
    """Create a console account in a workspace; prints the account id last."""
    from sluice.services.errors import DomainError

    async def run() -> str:
        from sluice.bootstrap import Container
        from sluice.services.user_api import UserApi

        container = await Container.start(_settings(), role="cli")
        users = UserApi.build(container.settings, container.db, container.graphs)
        try:
            account, _ = await users.accounts.create_account(
                email, password, name=name, workspace=workspace, role=role
            )
            return account.id
        finally:
            await users.close()
            await container.close()

    try:
        account_id = asyncio.run(run())
    except DomainError as exc:
        err.print(f"[red]error[/red] {exc.message}")
        raise typer.Exit(1) from exc
    print(account_id)


@openapi_app.command("export")
def openapi_export(directory: Annotated[Path, typer.Argument(file_okay=False)]) -> None:
    """Write one OpenAPI document per surface (JSON) and a Markdown rendering of each."""
    from sluice.api.app import create_app
    from sluice.api.openapi import export_documents

    settings = _settings()
    settings.openapi.enabled = True
    files = export_documents(create_app(settings).openapi())
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (directory / name).write_text(content, encoding="utf-8")
        err.print(f"wrote {directory / name}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address")] = None,
    port: Annotated[int | None, typer.Option(help="Port")] = None,
) -> None:
    """Serve the API (embedded mode also runs the workflows in this process)."""
    import uvicorn

    from sluice.api.app import create_app
    from sluice.cli.demo import ensure_demo

    settings = _settings()
    if host:
        settings.host = host
    if port:
        settings.port = port
    if settings.mode == "embedded":
        from sluice.adapters.sql.migrate import upgrade

        upgrade(settings.sql_url)
        if settings.demo_app:
            ensure_demo(settings)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=5,
    )


@app.command()
def worker() -> None:
    """Run a distributed-mode worker (arq) that executes workflow runs."""
    from sluice.worker import build_worker

    settings = _settings()
    if settings.mode != "distributed":
        err.print("[red]sluice worker needs SLUICE_MODE=distributed[/red] (embedded mode runs in serve)")
        raise typer.Exit(2)
    build_worker(settings).run()


@app.command("version")
def version() -> None:
    """Print the version."""
    from sluice import __version__

    print(json.dumps({"sluice": __version__, "python": sys.version.split()[0]}))


register_client_commands(app, apps_app)

if __name__ == "__main__":
    app()
