"""The engine's ports (§1.4): side effects reach the engine only through these."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Aware UTC."""
        ...

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class IdFactory(Protocol):
    def new(self, kind: str) -> str: ...


class CodeExecutor(Protocol):
    async def run(
        self, language: str, code: str, inputs: dict[str, Any], limits: dict[str, Any]
    ) -> dict[str, Any]: ...


@dataclass(slots=True)
class Ports:
    clock: Clock
    ids: IdFactory
    code: CodeExecutor | None = None
