"""``sluice providers``: OpenAI-compatible model providers (keys are stored encrypted)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console

from sluice.settings import load_settings

providers_app = typer.Typer(
    help="Model providers for llm, question-classifier and parameter-extractor nodes.", no_args_is_help=True
)
err = Console(stderr=True)


@providers_app.command("add")
def providers_add(
    name: Annotated[str, typer.Argument(help="The name a DSL's model.provider ends with, e.g. openai")],
    base_url: Annotated[str, typer.Option("--base-url", help="e.g. https://api.openai.com/v1")],
    api_key: Annotated[str, typer.Option("--api-key", help="Stored encrypted with the service secret")],
) -> None:
    """Add a provider (or replace the URL and key of one with this name); prints its id last."""
    from sluice.bootstrap import Container
    from sluice.services.errors import DomainError
    from sluice.services.providers import ProviderService

    settings = load_settings()

    async def run() -> str:
        container = await Container.start(settings, role="cli")
        try:
            return await ProviderService(container.db, settings.resolved_secret_key()).add(
                name, base_url, api_key
            )
        finally:
            await container.close()

    try:
        provider_id = asyncio.run(run())
    except DomainError as exc:
        err.print(f"[red]error[/red] {exc.message}")
        raise typer.Exit(1) from exc
    print(provider_id)


@providers_app.command("list")
def providers_list() -> None:
    """Print the configured provider names, one per line."""
    from sluice.bootstrap import Container
    from sluice.services.providers import ProviderService

    settings = load_settings()

    async def run() -> list[str]:
        container = await Container.start(settings, role="cli")
        try:
            return await ProviderService(container.db, settings.resolved_secret_key()).names()
        finally:
            await container.close()

    for name in asyncio.run(run()):
        print(name)
