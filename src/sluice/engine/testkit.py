"""Deterministic ports for tests and benchmarks (§7): a virtual clock, sequential ids and
call-recording fakes. With these the event stream is a function of the graph, the inputs, the
fakes' answers and the virtual times of commands."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sluice.engine.events import Event
from sluice.engine.ports import (
    CodeExecutionError,
    FormDecision,
    FormPending,
    HumanInputRequest,
    Ports,
)
from sluice.engine.template import InlineJinjaRenderer


class VirtualClock:
    """Starts at 2025-01-01T00:00:00Z. Time moves only when every task of the event loop is
    blocked: then the earliest sleeper wakes (ties in call order)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._start = start or datetime(2025, 1, 1, tzinfo=UTC)
        self._now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._counter = itertools.count()
        self._driver: asyncio.Task[None] | None = None

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._now)

    def monotonic(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._sleepers, (self._now + max(seconds, 0.0), next(self._counter), future))
        if self._driver is None or self._driver.done():
            self._driver = loop.create_task(self._drive())
        try:
            await future
        except asyncio.CancelledError:
            future.cancel()
            raise

    async def _idle(self) -> None:
        """Return once nothing else is runnable (two quiet passes of the loop's ready queue)."""
        loop = asyncio.get_running_loop()
        quiet = 0
        for _ in range(10_000):
            await asyncio.sleep(0)
            ready = getattr(loop, "_ready", None)
            if ready is None:  # not CPython's loop: fall back to a fixed number of passes
                quiet += 1
                if quiet >= 50:
                    return
            elif len(ready) == 0:
                quiet += 1
                if quiet >= 2:
                    return
            else:
                quiet = 0

    async def _drive(self) -> None:
        while self._sleepers:
            await self._idle()
            while self._sleepers and self._sleepers[0][2].done():
                heapq.heappop(self._sleepers)
            if not self._sleepers:
                return
            deadline, _, future = heapq.heappop(self._sleepers)
            self._now = max(self._now, deadline)
            future.set_result(None)


class SeqIds:
    """``00000000-0000-4000-8000-<12-digit n>``."""

    def __init__(self, start: int = 0) -> None:
        self._n = start
        self.kinds: list[str] = []

    def new(self, kind: str) -> str:
        self._n += 1
        self.kinds.append(kind)
        return f"00000000-0000-4000-8000-{self._n:012d}"


@dataclass
class Answer:
    """One answer of a fake port: a value or an exception to raise, after ``delay`` virtual
    seconds. ``result`` may also be a callable of the inputs returning a value or an ``Answer``."""

    result: Any = None
    delay: float = 0.0


@dataclass
class CodeCall:
    language: str
    code: str
    inputs: dict[str, Any]
    limits: dict[str, Any]


class FakeCodeExecutor:
    """Answers by program text: ``programs[code]`` is an ``Answer``, a list of them (one per call,
    the last repeating), a dict, or a callable of the inputs."""

    def __init__(self, clock: VirtualClock, programs: Mapping[str, Any]) -> None:
        self.clock = clock
        self.programs = dict(programs)
        self.calls: list[CodeCall] = []
        self.cancelled: list[str] = []
        self._served: dict[str, int] = {}

    def _answer(self, code: str) -> Answer:
        spec = self.programs.get(code)
        if spec is None:
            raise CodeExecutionError(f"NameError: unknown program {code!r}")
        if isinstance(spec, list | tuple):
            index = self._served.get(code, 0)
            self._served[code] = index + 1
            spec = spec[min(index, len(spec) - 1)]
        return spec if isinstance(spec, Answer) else Answer(spec)

    async def run(
        self, language: str, code: str, inputs: dict[str, Any], limits: dict[str, Any]
    ) -> dict[str, Any]:
        self.calls.append(CodeCall(language, code, dict(inputs), dict(limits)))
        answer = self._answer(code)
        if callable(answer.result):
            computed = answer.result(inputs)
            answer = computed if isinstance(computed, Answer) else Answer(computed, answer.delay)
        if answer.delay:
            try:
                await self.clock.sleep(answer.delay)
            except asyncio.CancelledError:
                self.cancelled.append(code)
                raise
        result = answer.result
        if isinstance(result, BaseException):
            raise result
        return result  # type: ignore[no-any-return]


class FakeHumanInput:
    """Forms answered by node id (``answers``); unanswered nodes stay pending."""

    def __init__(self, answers: Mapping[str, FormDecision] | None = None) -> None:
        self.answers: dict[str, FormDecision] = dict(answers or {})
        self.requests: list[HumanInputRequest] = []

    async def decide(self, request: HumanInputRequest) -> FormDecision:
        self.requests.append(request)
        return self.answers.get(request.node_id) or FormPending(form_id=f"form-{request.execution_id[-4:]}")


@dataclass
class FakePauseGate:
    """Records every commit; answers with ``release`` (execution ids) once, then nothing."""

    release: list[str] = field(default_factory=list)
    commits: list[tuple[dict[str, Any], list[dict[str, Any]]]] = field(default_factory=list)

    async def commit(self, snapshot: Mapping[str, Any], reasons: list[dict[str, Any]]) -> list[str]:
        self.commits.append((dict(snapshot), list(reasons)))
        out, self.release = self.release, []
        return out


def make_ports(
    clock: VirtualClock | None = None,
    *,
    code: Any = None,
    human_input: Any = None,
    pause_gate: Any = None,
    **extra: Any,
) -> Ports:
    """Ports for tests: a virtual clock, sequential ids, templates rendered on the loop."""
    return Ports(
        clock=clock or VirtualClock(),
        ids=SeqIds(),
        code=code,
        templates=InlineJinjaRenderer(),
        human_input=human_input,
        pause_gate=pause_gate,
        **extra,
    )


async def collect(events: AsyncIterator[Event]) -> list[Event]:
    return [event async for event in events]


def at_time(clock: VirtualClock, seconds: float, action: Callable[[], None]) -> asyncio.Task[None]:
    """Run ``action`` (e.g. ``engine.abort``) at a virtual time."""

    async def wait() -> None:
        await clock.sleep(seconds - clock.monotonic())
        action()

    return asyncio.ensure_future(wait())


def kinds(events: Sequence[Event]) -> list[str]:
    return [e.kind for e in events]
