"""Ports the runtime and the API depend on; adapters implement them (memory, redis, arq, sql).

Offsets are Redis Stream ids ``"<ms>-<seq>"``, compared as integer pairs; ``"0-0"`` precedes all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


class Fenced(Exception):
    """An append carried a fence below the stored one: a newer try owns the run. Nothing was written."""


@dataclass(frozen=True, slots=True)
class NewEntry:
    """One event to append. ``key`` deduplicates (a known key is not appended again)."""

    event: str
    payload: bytes
    key: str | None = None
    node: str | None = None


@dataclass(frozen=True, slots=True)
class LogEntry:
    offset: str
    event: str
    payload: bytes
    key: str | None = None
    node: str | None = None
    prev: str | None = None  # set on the first entry of an incarnation: "0-0", a previous last, or "?"


@dataclass(frozen=True, slots=True)
class AppendResult:
    offset: str
    duplicate: bool


@dataclass(frozen=True, slots=True)
class LogBounds:
    exists: bool
    first: str | None
    first_prev: str | None
    last: str | None  # from the meta record; survives expiry of the log itself


class LogWaiter(Protocol):
    """A blocking follower (one dedicated connection in Redis)."""

    async def wait(self, cursors: Mapping[str, str], timeout: float) -> set[str]:
        """Block until some run in ``{run_id: offset}`` has entries after its offset, or timeout.

        Returns the run ids that have newer entries (empty on timeout or interrupt)."""
        ...

    async def interrupt(self) -> None: ...

    async def close(self) -> None: ...


class EventLog(Protocol):
    async def append(
        self, run_id: str, entries: Sequence[NewEntry], fence: int = 0, run_start: bool = False
    ) -> list[AppendResult]: ...

    async def read(self, run_id: str, after: str, limit: int) -> list[LogEntry]: ...

    async def bounds(self, run_id: str) -> LogBounds: ...

    async def touch(self, run_id: str) -> None: ...

    async def raise_fence(self, run_id: str, fence: int) -> None: ...

    def waiter(self) -> LogWaiter: ...

    async def close(self) -> None: ...


class ControlBus(Protocol):
    """Process-wide control messages (stop requests). Redis Pub/Sub or in-process."""

    async def publish(self, message: Mapping[str, Any]) -> None: ...

    def subscribe(self) -> AsyncIterator[dict[str, Any]]: ...

    async def close(self) -> None: ...


class JobQueue(Protocol):
    """Jobs by id (arq is maintenance-only: it stays behind this port). Arguments are ids only."""

    async def enqueue(self, job_id: str, function: str, *args: str) -> None: ...

    async def known(self, job_id: str) -> bool:
        """Whether the queue still holds the job (queued, running, or its result kept)."""
        ...

    async def close(self) -> None: ...
