"""The composition root: the only place that chooses adapters by mode.

``Container.start(settings, role)`` opens what the role needs (an API process, a worker, or a
CLI command) and ``close()`` releases it in reverse order; nothing connects at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import socket
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from sluice.adapters.documents import TextExtractor
from sluice.adapters.files import LocalFileStore
from sluice.adapters.http import GuardedHttpTransport, SsrfPolicy
from sluice.adapters.llm.registry import ProviderRegistry
from sluice.adapters.mail import SmtpMailer
from sluice.adapters.memory.event_log import MemoryControlBus, MemoryEventLog
from sluice.adapters.memory.queue import InProcessQueue
from sluice.adapters.sandbox import SandboxLimits, SubprocessCodeExecutor
from sluice.adapters.sql.db import create_engine, session_factory
from sluice.adapters.sql.memory import SqlConversationMemory
from sluice.engine import EngineSettings
from sluice.runtime.clock import SystemClock
from sluice.runtime.graphs import GraphCache
from sluice.runtime.hub import StreamHub
from sluice.runtime.lease import LoopLagMonitor
from sluice.runtime.ports import ControlBus, EventLog, JobQueue
from sluice.runtime.reaper import Reaper
from sluice.runtime.segment import RuntimeConfig, SegmentRunner
from sluice.services.apps import AppService
from sluice.services.chat import ChatService
from sluice.services.conversations import ConversationService
from sluice.services.files import FileService, UploadLimits
from sluice.services.forms import FormService
from sluice.services.forms_checker import FormChecker
from sluice.services.human_input import HumanInputConfig, HumanInputRuntime
from sluice.services.human_input_mail import FormMailer
from sluice.services.providers import ProviderService
from sluice.services.runs import RUN_JOB, RunService
from sluice.services.streams import StreamService
from sluice.settings import Mode, NodeIoSettings, Settings

log = logging.getLogger("sluice")
Role = Literal["api", "worker", "cli"]


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def io_engine_settings(io: NodeIoSettings) -> dict[str, Any]:
    """The I/O settings the engine's own ``EngineSettings`` knows (code and http limits)."""
    wanted = {
        "code_cpu_time_s": io.code_cpu_time_s,
        "code_wall_time_s": io.code_wall_time_s,
        "code_memory_bytes": io.code_memory_mb * 1024 * 1024,
        "code_stdout_bytes": io.code_stdout_bytes,
        "code_enable_network": io.code_enable_network,
        "http_max_redirects": io.http_max_redirects,
        "http_max_text_bytes": io.http_max_text_bytes,
        "http_max_file_bytes": io.http_max_file_bytes,
        "http_allow_private_networks": io.http_allow_private_networks,
        "http_allowed_hosts": tuple(io.http_allowed_hosts),
    }
    known = {f.name for f in dataclasses.fields(EngineSettings)}
    return {name: value for name, value in wanted.items() if name in known}


def io_ports(settings: Settings) -> dict[str, Any]:
    """The I/O adapters of the engine's ports: sandbox, SSRF-guarded HTTP, files, documents."""
    io = settings.io
    http = GuardedHttpTransport(
        SsrfPolicy.build(
            allow_private_networks=io.http_allow_private_networks, allowed_hosts=io.http_allowed_hosts
        )
    )
    code = SubprocessCodeExecutor(
        SandboxLimits(
            cpu_time_s=io.code_cpu_time_s,
            wall_time_s=io.code_wall_time_s,
            memory_bytes=io.code_memory_mb * 1024 * 1024,
            stdout_bytes=io.code_stdout_bytes,
            enable_network=io.code_enable_network,
        ),
        python=io.code_python,
        node=io.code_node,
    )
    files = file_store(settings, http)
    return {"code": code, "http": http, "files": files, "documents": TextExtractor()}


def file_store(settings: Settings, http: GuardedHttpTransport | None) -> Any:
    """The configured storage of uploaded and engine-made files: the data directory or S3."""
    f = settings.files
    if f.storage == "s3":
        from sluice.adapters.files.s3 import S3FileStore

        return S3FileStore(
            f.s3_bucket,
            endpoint_url=f.s3_endpoint_url,
            region=f.s3_region,
            access_key=f.s3_access_key,
            secret_key=f.s3_secret_key,
            address_style=f.s3_address_style,
            http=http,
            remote_max_bytes=settings.io.file_fetch_max_bytes,
        )
    return LocalFileStore(settings.data_dir, http, remote_max_bytes=settings.io.file_fetch_max_bytes)


def human_input_config(settings: Settings) -> HumanInputConfig:
    hi = settings.human_input
    return HumanInputConfig(
        global_timeout_seconds=hi.global_timeout_seconds, operator_email=hi.operator_email
    )


def form_mailer(settings: Settings, db: async_sessionmaker[AsyncSession]) -> FormMailer:
    hi = settings.human_input
    mailer = None
    if hi.smtp_server:
        mailer = SmtpMailer(
            hi.smtp_server,
            hi.smtp_port,
            hi.smtp_username,
            hi.smtp_password,
            use_tls=hi.smtp_use_tls,
            start_tls=hi.smtp_opportunistic_tls,
            sender=hi.mail_default_send_from,
        )
    return FormMailer(
        db,
        mailer,
        hi.app_web_url or settings.public_url,
        enabled=hi.email_delivery_enabled,
        max_attempts=hi.email_max_attempts,
        delays=hi.email_retry_delays_seconds,
    )


def file_service(settings: Settings, db: async_sessionmaker[AsyncSession]) -> FileService:
    api = settings.api
    limits = UploadLimits(
        file_mb=api.upload_file_size_limit,
        image_mb=api.upload_image_file_size_limit,
        video_mb=api.upload_video_file_size_limit,
        audio_mb=api.upload_audio_file_size_limit,
        per_run=api.workflow_file_upload_limit,
        blacklist=frozenset(
            e.strip().lower().lstrip(".") for e in api.upload_file_extension_blacklist.split(",") if e.strip()
        ),
    )
    return FileService(db, file_store(settings, None), limits, settings.data_dir / "tmp")


@dataclass
class Container:
    settings: Settings
    sql: AsyncEngine
    db: async_sessionmaker[AsyncSession]
    graphs: GraphCache
    apps: AppService
    event_log: EventLog | None = None
    control: ControlBus | None = None
    queue: JobQueue | None = None
    runner: SegmentRunner | None = None
    runs: RunService | None = None
    streams: StreamService | None = None
    hub: StreamHub | None = None
    reaper: Reaper | None = None
    files: FileService | None = None
    chat: ChatService | None = None
    conversations: ConversationService | None = None
    clock: SystemClock = field(default_factory=SystemClock)
    human_input_runtime: HumanInputRuntime | None = None
    forms: FormService | None = None
    form_checker: FormChecker | None = None
    _closers: list[object] = field(default_factory=list)
    _signals: dict[int, Any] = field(default_factory=dict)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def start(cls, settings: Settings, role: Role) -> Container:
        # servers: SQLite transactions (all BEGIN IMMEDIATE) queue for one connection in FIFO
        # order; SQLite's own busy polling starved readers during reconnect storms
        sql = create_engine(settings.sql_url, sqlite_pool_size=None if role == "cli" else 1)
        db = session_factory(sql)
        container = cls(settings, sql, db, GraphCache(), AppService(db))
        if role == "cli":
            return container
        try:
            await container._open_runtime(role)
        except BaseException:
            await container.close()
            raise
        return container

    async def _open_runtime(self, role: Role) -> None:
        s = self.settings
        st = s.streaming
        if s.mode is Mode.embedded:
            self.event_log = MemoryEventLog(
                retention_seconds=st.pubsub_streams_retention_seconds,
                meta_ttl_seconds=st.event_log_meta_ttl_seconds,
                max_bytes=st.memory_event_log_max_bytes,
            )
            self.control = MemoryControlBus()
        else:
            import redis.asyncio as aioredis

            from sluice.adapters.redis.event_log import RedisControlBus, RedisEventLog

            assert s.redis_url is not None
            # one bounded pool per process; blocking readers (hub, waiters) open their own connections
            pool = aioredis.BlockingConnectionPool.from_url(
                s.redis_url, max_connections=st.redis_pool_max, timeout=st.redis_socket_timeout_seconds
            )
            client = aioredis.Redis(connection_pool=pool)
            self._closers.append(client)
            self.event_log = RedisEventLog(
                client,
                s.redis_url,
                prefix=st.redis_key_prefix,
                retention_seconds=st.pubsub_streams_retention_seconds,
                meta_ttl_seconds=st.event_log_meta_ttl_seconds,
                block_ms=st.hub_block_ms,
            )
            self.control = RedisControlBus(client, prefix=st.redis_key_prefix)
        self.human_input_runtime = HumanInputRuntime(self.db, self.clock, human_input_config(s))
        self.human_input_runtime.mailer = form_mailer(s, self.db)
        self._closers.append(self.human_input_runtime.mailer)
        engine_settings = EngineSettings(
            max_steps=s.engine.max_steps, max_time_s=s.engine.max_time_s, **io_engine_settings(s.io)
        )
        if s.mode is Mode.embedded or role == "worker":
            ports = io_ports(s)
            self._closers.append(ports["http"])
            models = ProviderRegistry(ProviderService(self.db, s.resolved_secret_key()).config)
            self._closers.append(models)
            self.runner = SegmentRunner(
                self.db,
                self.event_log,
                self.graphs,
                engine_settings,
                worker_id(),
                RuntimeConfig.from_settings(st),
                **ports,
                human_input=self.human_input_runtime,
                pause_hook=self.human_input_runtime,
                models=models,
                memory=SqlConversationMemory(self.db),
            )
            self._spawn(self.runner.watch(self.control), "control")
            self._spawn(LoopLagMonitor(st.loop_lag_warn_seconds, self.runner.describe).run(), "loop-lag")
        if s.mode is Mode.embedded:
            assert self.runner is not None
            self.queue = InProcessQueue({RUN_JOB: self.runner.run_try}, st.embedded_max_concurrent_tries)
        else:
            from sluice.adapters.arq.queue import ArqQueue

            assert s.redis_url is not None
            self.queue = await ArqQueue.connect(s.redis_url, st.arq_queue_name)
        if self.runner is not None:
            self.runner.queue = self.queue
        if s.mode is Mode.embedded or role == "worker" or st.reaper_in_api:
            self.reaper = Reaper(
                self.db,
                self.event_log,
                self.queue,
                interval=st.reaper_interval_seconds,
                max_tries=st.max_segment_tries,
                enqueue_grace=st.enqueue_grace_seconds,
                outbox_age=st.outbox_retry_after_seconds,
                max_event_bytes=st.event_max_bytes,
                holds=self.runner.holds if self.runner is not None else None,
            )
            self._spawn(self.reaper.run(), "reaper")
            hi = s.human_input
            self.form_checker = FormChecker(
                self.db,
                self.event_log,
                self.queue,
                self.clock,
                human_input_config(s),
                interval_seconds=hi.timeout_task_interval * 60,
                batch=hi.timeout_task_batch,
                max_event_bytes=st.event_max_bytes,
            )
            if hi.enable_timeout_task:
                self._spawn(self.form_checker.run(), "human-input-checker")
        if role != "api":
            return
        self.runs = RunService(
            self.db,
            self.event_log,
            self.queue,
            self.control,
            self.graphs,
            s.api.app_max_active_requests,
            max_event_bytes=st.event_max_bytes,
        )
        self.files = file_service(s, self.db)
        self.forms = FormService(
            self.db, self.queue, self.clock, human_input_config(s), file_list_max=s.human_input.file_list_max
        )
        self.runs.file_resolver = self.files
        self.chat = ChatService(self.db, self.runs, self.graphs)
        self.conversations = ConversationService(self.db, self.chat)
        self.hub = StreamHub(
            self.event_log,
            readers=st.hub_readers,
            read_count=st.hub_read_count,
            block_ms=st.hub_block_ms,
            linger_seconds=st.hub_linger_seconds,
            queue_max_frames=st.sse_client_queue_max_frames,
            queue_max_bytes=st.sse_client_queue_max_bytes,
            ping_interval=st.sse_ping_interval_seconds,
            idle_timeout=st.sse_idle_timeout_seconds,
            max_connection_seconds=st.sse_max_connection_seconds,
            emit_ids=st.sse_emit_event_ids,
            max_streams=st.sse_max_streams_per_process,
            max_streams_per_run=st.sse_max_streams_per_run,
        )
        await self.hub.start()
        self.streams = StreamService(
            self.db,
            self.event_log,
            self.hub,
            retry_ms=st.sse_retry_ms,
            page_size=st.replay_page_size,
            snapshot_max_nodes=st.snapshot_max_node_executions,
            ping_interval=st.sse_ping_interval_seconds,
            send_timeout=st.sse_send_timeout_seconds,
        )
        self._chain_shutdown_signals(self.hub.shutdown)

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(work, name=name))

    def _chain_shutdown_signals(self, on_signal: Callable[[], None]) -> None:
        """SIGTERM/SIGINT end every SSE stream with ``sluice_reconnect(server_shutdown)`` at once,
        then the server's own handler (uvicorn's graceful shutdown) runs as before (spec §5.3)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(sig)

            def handler(signum: int, frame: FrameType | None, previous: Any = previous) -> None:
                loop.call_soon_threadsafe(on_signal)
                if callable(previous):
                    previous(signum, frame)

            try:
                signal.signal(sig, handler)
            except ValueError:  # not the main thread (an app embedded in tests): nothing to chain
                return
            self._signals[sig] = previous

    async def drain(self, seconds: float) -> None:
        """Give running tries up to ``seconds`` to finish (SIGTERM: WORKER_DRAIN_SECONDS)."""
        if self.runner is not None:
            await self.runner.drained(seconds)

    async def close(self) -> None:
        for sig, previous in self._signals.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, previous)
        self._signals.clear()
        if self.hub is not None:
            self.hub.shutdown()
        if self.settings.mode is Mode.embedded and self.runner is not None:
            await self.drain(self.settings.streaming.worker_drain_seconds)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.hub is not None:
            await self.hub.close()
        if self.queue is not None:  # in-process tries are cancelled here and hand their lease back
            with contextlib.suppress(Exception):
                await self.queue.close()
        if self.runner is not None:  # tries cancelled by arq finish handing back before SQL goes
            await self.runner.drained(5)
        for resource in (self.control, self.event_log):
            if resource is not None:
                with contextlib.suppress(Exception):
                    await resource.close()
        for closer in self._closers:
            with contextlib.suppress(Exception):
                await closer.aclose()  # type: ignore[attr-defined]
        await self.sql.dispose()
