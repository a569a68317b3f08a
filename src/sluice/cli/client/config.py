"""Client configuration (host and bearer token) under the user's config directory (XDG).

``$XDG_CONFIG_HOME/sluice/config.json`` (default ``~/.config``), written with mode 0600 because
it holds a bearer token.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "sluice" / "config.json"


@dataclass
class ClientConfig:
    host: str
    token: str
    token_id: str | None = None
    expires_at: str | None = None
    account: dict[str, Any] = field(default_factory=dict)
    default_workspace_id: str | None = None
    workspaces: list[dict[str, Any]] = field(default_factory=list)


class NotLoggedIn(Exception):
    pass


def load() -> ClientConfig:
    path = config_path()
    if not path.exists():
        raise NotLoggedIn("Not logged in: run `sluice login URL` first.")
    data = json.loads(path.read_text(encoding="utf-8"))
    known = {k: v for k, v in data.items() if k in ClientConfig.__dataclass_fields__}
    return ClientConfig(**known)


def save(config: ClientConfig) -> Path:
    """Write atomically with mode 0600 (the file holds a bearer token)."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(asdict(config), handle, indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path
