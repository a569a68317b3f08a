"""The bundled demo app that ``sluice serve`` publishes on first start (embedded mode)."""

from __future__ import annotations

import asyncio
from importlib import resources

from rich.console import Console

from sluice.settings import Settings

DEMO_FILE = "greeter.yml"
err = Console(stderr=True)


def ensure_demo(settings: Settings) -> None:
    """Import the demo once per data directory and print its key once; later starts print a hint."""
    marker = settings.data_dir / "demo_app_id"
    if marker.exists():
        err.print(
            f"Demo app {marker.read_text().strip()} is published; its key was printed on first start "
            "(new key: sluice keys create <app id>)."
        )
        return

    async def run() -> tuple[str, str]:
        from sluice.bootstrap import Container

        container = await Container.start(settings, role="cli")
        try:
            text = resources.files("sluice.demo").joinpath(DEMO_FILE).read_text(encoding="utf-8")
            outcome = await container.apps.import_app(text)
            key = await container.apps.create_key(outcome.app_id)
        finally:
            await container.close()
        return outcome.app_id, key

    app_id, key = asyncio.run(run())
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(app_id + "\n")
    url = f"http://{settings.host}:{settings.port}"
    err.print(f"[green]Demo app published:[/green] {app_id}")
    err.print(f"[green]API key (shown once):[/green] [bold]{key}[/bold]")
    err.print(
        "Try it:\n"
        f"  curl -N -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\\n"
        '    -d \'{"inputs":{"name":"Ada","n":21},"response_mode":"streaming","user":"u1"}\' \\\n'
        f"    {url}/v1/workflows/run"
    )
