"""One SSE stream of one run (streaming spec §3.2-§3.5, §5.2): the decision procedure, replay then
join the hub (subscribe before the queue is drained), SQL snapshots, close rules, the idle probe.

Entries at or below the channel cursor C come from the log, entries above it from the hub queue,
and a frame whose offset is not above the last one sent is dropped: no gap, no duplicate (I3).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

from sluice.adapters.sql import segments_repo as segs
from sluice.adapters.sql.tables import WorkflowRun
from sluice.runtime import offsets
from sluice.runtime.dify_events import (
    encode,
    flagged,
    node_finished_payload,
    node_started_payload,
    workflow_paused,
    workflow_started,
)
from sluice.runtime.facts import run_facts
from sluice.runtime.hub import PING, Subscriber, control_frame, data_frame
from sluice.runtime.ports import LogEntry

if TYPE_CHECKING:
    from sluice.services.streams import StreamService

T = TypeVar("T")
FINISHED, PAUSED = "workflow_finished", "workflow_paused"
TERMINAL_STATUSES = frozenset({"succeeded", "partial-succeeded", "failed", "stopped"})


def prelude(retry_ms: int) -> bytes:
    return (f"retry: {retry_ms}\n".encode() if retry_ms else b"") + PING


def frame(entry: LogEntry, emit_id: bool = True) -> bytes:
    return data_frame(entry.offset if emit_id else None, entry.payload)


class _Switch(Exception):
    """Replay found a gap before anything was sent: serve a snapshot instead."""


class RunStream:
    def __init__(
        self,
        service: StreamService,
        run_id: str,
        task_id: str,
        after: str | None,
        run: WorkflowRun | None,
        snapshot: bool,
        continue_on_pause: bool,
    ) -> None:
        self.s = service
        self.hub = service.hub
        self.run_id = run_id
        self.task_id = task_id
        self.after = after
        self.run = run
        self.snapshot = snapshot
        self.continue_on_pause = continue_on_pause
        self.emit_ids = service.hub.emit_ids
        self.sub: Subscriber | None = None
        self.last_sent = after or offsets.ZERO
        self.last_pos = offsets.parse(self.last_sent)
        self.sent_any = False
        self.sent_keys: set[str] = set()
        self.closing = False
        self.data_pending = False  # the next chunk carries data (pings do not reset the idle timer)
        self.gone = False
        self.released = False
        self._loop = asyncio.get_running_loop()
        self.last_write = self._loop.time()

    # -- life cycle ---------------------------------------------------------------------------------

    def abort(self) -> None:
        """The client went away: end at the next step (the run goes on, I5)."""
        self.gone = True
        if self.sub is not None:
            self.sub.close("client_gone")

    async def aclose(self) -> None:
        if self.sub is not None:
            self.hub.unsubscribe(self.sub)
            self.sub = None
        if not self.released:
            self.released = True
            self.hub.release(self.run_id)

    async def chunks(self) -> AsyncIterator[bytes]:
        yield prelude(self.s.retry_ms)
        try:
            async for chunk in self._body():
                if self.gone:
                    return
                self.last_write = self._loop.time()
                if self.sub is not None:
                    self.sub.wrote(self.last_write, self.data_pending)
                self.data_pending = False
                yield chunk
        finally:
            await self.aclose()

    # -- the decision procedure (§3.2) ------------------------------------------------------------

    async def _body(self) -> AsyncIterator[bytes]:
        run = self.run
        if run is None:  # a run POST's own stream: replay from 0-0 and follow
            async for chunk in self._replay_follow():
                yield chunk
            return
        if self.snapshot:
            async for chunk in self._snapshot():
                yield chunk
            return
        terminal = run.status in TERMINAL_STATUSES
        bounds = await self.s.log.bounds(self.run_id)
        if self.after is None and terminal:
            async for chunk in self._terminal_only(bounds.last):
                yield chunk
            return
        last = bounds.last
        if not bounds.exists or last is None or offsets.parse(self.last_sent) > offsets.parse(last):
            async for chunk in self._snapshot():
                yield chunk
            return
        if self.last_sent == last and (terminal or (run.status == "paused" and not self.continue_on_pause)):
            yield self._at_rest(run)
            return
        try:
            async for chunk in self._replay_follow():
                yield chunk
        except _Switch:
            async for chunk in self._snapshot():
                yield chunk

    async def _terminal_only(self, last: str | None) -> AsyncIterator[bytes]:
        """Rule 2: a finished run without an offset gets its one ``workflow_finished``."""
        if last is not None:
            entries = await self.s.log.read(self.run_id, offsets.before(last), 1)
            if entries and entries[0].event == FINISHED:
                yield frame(entries[0], self.emit_ids)
                return
        assert self.run is not None
        yield self._stored_terminal(self.run)

    def _stored_terminal(self, run: WorkflowRun) -> bytes:
        payload = run.final_event or {"event": FINISHED, "task_id": run.task_id, "workflow_run_id": run.id}
        return data_frame(None, encode(flagged(payload)))

    def _pause_block(self, run: WorkflowRun) -> bytes:
        facts = run_facts(run)
        return data_frame(None, encode(flagged(workflow_paused(facts, {}, []).payload)))

    def _at_rest(self, run: WorkflowRun) -> bytes:
        """Rule 5: nothing left and the run at rest → flagged terminal or pause block, then close."""
        self.data_pending = True
        return self._stored_terminal(run) if run.status in TERMINAL_STATUSES else self._pause_block(run)

    # -- replay, join, follow (§3.3) --------------------------------------------------------------

    def _accept(self, entry: LogEntry, out: list[bytes]) -> bool:
        """Add ``entry`` to ``out`` unless already sent; ``True`` when the stream must close after it.
        A continuity failure raises ``_Switch`` (nothing sent yet) or closes with ``resync``."""
        position = offsets.pos(entry.offset)
        if position <= self.last_pos:
            return False
        if entry.key is not None and entry.key in self.sent_keys:
            self.last_sent, self.last_pos = entry.offset, position
            return False
        if entry.prev is not None and not offsets.continuous(entry.prev, self.last_sent):
            if not self.sent_any and not out:
                raise _Switch()
            out.append(control_frame("resync", self.last_sent))
            return True
        out.append(frame(entry, self.emit_ids))
        self.last_sent, self.last_pos = entry.offset, position
        self.sent_any = self.data_pending = True
        if entry.event == FINISHED:
            return True
        return entry.event == PAUSED and not self.continue_on_pause and self.pause_closes

    pause_closes = True  # a replayed pause closes only if it is current: decided in _replay_follow

    async def _read_pages(self, upto: str | None) -> AsyncIterator[bytes]:
        """Pages of entries after ``last_sent`` (up to ``upto`` if given), each send awaited."""
        page = self.s.page_size
        limit = offsets.parse(upto) if upto is not None else None
        while not self.closing:
            if self.hub.shutting_down:
                yield control_frame("server_shutdown", self.last_sent)
                self.closing = True
                return
            entries = await self.s.log.read(self.run_id, self.last_sent, page)
            if limit is not None:
                entries = [e for e in entries if offsets.parse(e.offset) <= limit]
            out: list[bytes] = []
            for index, entry in enumerate(entries):
                self.pause_closes = index == len(entries) - 1 and len(entries) < page
                if self._accept(entry, out):
                    self.closing = True
                    break
            if out:
                yield b"".join(out)
            elif self._loop.time() - self.last_write >= self.s.ping_interval - 1:
                yield PING
            if len(entries) < page:
                return

    async def _replay_follow(self) -> AsyncIterator[bytes]:
        async for chunk in self._read_pages(None):  # step 1
            yield chunk
        if self.closing:
            return
        sub, cursor = await self.hub.subscribe(self.run_id)  # step 2
        self.sub = sub
        if self.gone:
            return
        self.pause_closes = False
        if self.last_pos < offsets.pos(cursor):  # step 3
            async for chunk in self._read_pages(cursor):
                yield chunk
            if self.closing:
                return
        async for chunk in self._follow(sub):  # step 4
            yield chunk

    async def _follow(self, sub: Subscriber) -> AsyncIterator[bytes]:
        self.pause_closes = True  # live: Dify closes at the first pause
        while True:
            await sub.wait()
            if self.gone:
                return
            if sub.closed:
                if sub.reason == "server_shutdown":
                    out = self._drain(sub)
                    if self.closing:
                        yield b"".join(out)
                        return
                    yield b"".join([*out, control_frame("server_shutdown", self.last_sent)])
                else:  # slow_consumer or resync: what is queued is dropped, the client resumes
                    yield control_frame(sub.reason or "resync", self.last_sent)
                return
            out = self._drain(sub)
            if out:
                yield b"".join(out)
            if self.closing:
                return
            if sub.alarm is not None:
                async for chunk in self._alarm(sub):
                    yield chunk
                if self.closing:
                    return

    def _drain(self, sub: Subscriber) -> list[bytes]:
        out: list[bytes] = []
        for item in sub.take():
            if item.event is None:
                out.append(item.data)
                continue
            assert item.offset is not None
            if item.pos <= self.last_pos:
                continue
            if item.key is not None and item.key in self.sent_keys:
                self.last_sent, self.last_pos = item.offset, item.pos
                continue
            out.append(item.data)
            self.last_sent, self.last_pos = item.offset, item.pos
            self.sent_any = self.data_pending = True
            if item.event == FINISHED or (item.event == PAUSED and not self.continue_on_pause):
                self.closing = True
                break
        return out

    async def _alarm(self, sub: Subscriber) -> AsyncIterator[bytes]:
        """Idle probe (§5.2) or the lifetime cap."""
        alarm, sub.alarm = sub.alarm, None
        if alarm == "max_duration":
            yield control_frame("max_duration", self.last_sent)
            self.closing = True
            return
        run = await self.s.load_run(self.run_id)
        if run is not None and run.status in TERMINAL_STATUSES:
            yield self._stored_terminal(run)
            self.closing = True
        elif run is not None and run.status == "paused" and not self.continue_on_pause:
            yield self._pause_block(run)
            self.closing = True
        else:
            yield control_frame("idle_timeout", self.last_sent)
            self.closing = True

    # -- snapshot (§3.4) ----------------------------------------------------------------------------

    async def _pinging(self, work: Awaitable[T]) -> AsyncIterator[bytes | T]:
        """Await ``work``, yielding pings while it takes longer than the ping interval allows."""
        task = asyncio.ensure_future(work)
        try:
            while True:
                wait = max(0.05, self.s.ping_interval - (self._loop.time() - self.last_write) - 0.5)
                done, _ = await asyncio.wait({task}, timeout=wait)
                if done:
                    yield task.result()
                    return
                self.last_write = self._loop.time()
                yield PING
        finally:
            if not task.done():
                task.cancel()

    async def _snapshot(self) -> AsyncIterator[bytes]:
        sub, cursor = await self.hub.subscribe(self.run_id)
        self.sub = sub
        loaded: tuple[WorkflowRun | None, list[Any], int] | None = None
        async for item in self._pinging(self._load_snapshot()):
            if isinstance(item, bytes):
                yield item
            else:
                loaded = item
        assert loaded is not None
        run, rows, total = loaded
        if run is None:
            yield control_frame("resync", self.last_sent)
            return
        facts = run_facts(run)
        payloads: list[dict[str, Any]] = []
        started = workflow_started(facts, dict(run.inputs or {})).payload
        if total > len(rows):
            started["data"]["snapshot_truncated"] = True
        payloads.append(started)
        self.sent_keys.update(f"ws:{n}" for n in range(run.segment + 1))
        for row in rows:
            payloads.append(node_started_payload(facts, row))
            self.sent_keys.add(f"ns:{row.id}")
            if row.status != "running":
                payloads.append(node_finished_payload(facts, row))
                self.sent_keys.add(f"nf:{row.id}")
        terminal = run.status in TERMINAL_STATUSES
        if terminal and run.final_event:
            payloads.append(dict(run.final_event))
            self.sent_keys.add("wf")
        elif run.status == "paused":
            payloads.append(workflow_paused(facts, {}, []).payload)
        self.data_pending = True
        out = [data_frame(None, encode(flagged(p))) for p in payloads[:-1]]
        last_id = cursor if cursor != offsets.ZERO and self.emit_ids else None
        out.append(data_frame(last_id, encode(flagged(payloads[-1]))))
        self.sent_any = True
        self.last_sent, self.last_pos = cursor, offsets.pos(cursor)
        yield b"".join(out)
        if terminal or (run.status == "paused" and not self.continue_on_pause):
            return
        async for chunk in self._follow(sub):
            yield chunk

    async def _load_snapshot(self) -> tuple[WorkflowRun | None, list[Any], int]:
        async with self.s.db() as session, session.begin():
            run = await segs.get_run(session, self.run_id)
            if run is None:
                return None, [], 0
            rows = list(await segs.node_executions(session, self.run_id, self.s.snapshot_max_nodes))
            total = len(rows)
            if total >= self.s.snapshot_max_nodes:
                total = await segs.count_node_executions(session, self.run_id)
        return run, rows, total
