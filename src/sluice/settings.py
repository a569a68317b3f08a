"""All settings, read once at start from ``SLUICE_*`` environment variables (or ``.env``).

Nested groups use ``__`` (``SLUICE_STREAMING__SSE_PING_INTERVAL_SECONDS``); the few that every
deployment touches sit at the top level.
"""

from __future__ import annotations

import json
import logging
import secrets
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Mode(StrEnum):
    embedded = "embedded"
    distributed = "distributed"


class StreamingSettings(BaseModel):
    pubsub_streams_retention_seconds: int = Field(600, ge=1)
    event_log_paused_retention_seconds: int = Field(600, ge=1)
    event_log_meta_ttl_seconds: int = 604800
    redis_key_prefix: str = "sluice"
    sse_ping_interval_seconds: float = Field(10, ge=0.05, le=30)
    sse_idle_timeout_seconds: float = 300
    sse_retry_ms: int = 1000
    sse_emit_event_ids: bool = True
    replay_page_size: int = 500
    blocking_max_wait_seconds: float = 1200
    hub_block_ms: int = 1000
    lease_ttl_seconds: float = 15
    heartbeat_interval_seconds: float = 5
    reaper_interval_seconds: float = 5
    max_segment_tries: int = 3
    stop_cancel_grace_seconds: float = 0.5
    workflow_max_execution_time: int = 1200
    arq_queue_name: str = "sluice:queue"
    worker_max_jobs: int = 20
    arq_poll_delay_seconds: float = 0.5
    arq_keep_result_seconds: int = 60
    embedded_max_concurrent_tries: int = 20
    # -- streaming spec §9, added with the hub, the writer, leases and the reaper ---------------------
    event_log_backend: str = "auto"  # memory | redis | auto (memory embedded, redis distributed)
    redis_pool_max: int = Field(32, ge=2)
    redis_socket_timeout_seconds: float = 5
    event_max_bytes: int = Field(1048576, ge=1024)
    append_batch_max_events: int = Field(256, ge=1)
    append_batch_max_bytes: int = Field(1048576, ge=1024)
    append_buffer_max_events: int = Field(10000, ge=1)
    append_retry_max_seconds: float = 30
    memory_event_log_max_bytes: int = 268435456
    sse_client_queue_max_frames: int = Field(1024, ge=1)
    sse_client_queue_max_bytes: int = Field(8388608, ge=1024)
    sse_send_timeout_seconds: float = 30
    sse_max_streams_per_process: int = Field(10000, ge=1)
    sse_max_streams_per_run: int = Field(1000, ge=1)
    sse_max_connection_seconds: float = 0
    sse_shutdown_grace_seconds: float = 2
    sse_degraded_poll_seconds: float = 2
    snapshot_max_node_executions: int = Field(5000, ge=1)
    hub_readers: int = Field(2, ge=1)
    hub_linger_seconds: float = 5
    hub_read_count: int = Field(500, ge=1)
    reaper_in_api: bool = False
    enqueue_grace_seconds: float = 10
    queued_probe_after_seconds: float = 60
    outbox_retry_after_seconds: float = 5
    loop_lag_warn_seconds: float = 1.0
    worker_drain_seconds: float = 20
    arq_health_check_interval_seconds: int = 60
    allow_short_retention: bool = False  # tests of expiry only: lifts the 60 s floor on retention

    @model_validator(mode="after")
    def _check(self) -> StreamingSettings:
        if self.sse_ping_interval_seconds >= self.sse_idle_timeout_seconds:
            raise ValueError("sse_ping_interval_seconds must be below sse_idle_timeout_seconds")
        if 2 * self.heartbeat_interval_seconds >= self.lease_ttl_seconds:
            raise ValueError("2 x heartbeat_interval_seconds must be below lease_ttl_seconds")
        if self.pubsub_streams_retention_seconds < 60 and not self.allow_short_retention:
            raise ValueError("pubsub_streams_retention_seconds must be at least 60")
        return self


class EngineLimits(BaseModel):
    max_steps: int = Field(500, ge=1)
    max_time_s: float = Field(1200, gt=0)


class ApiSettings(BaseModel):
    app_max_active_requests: int = Field(0, ge=0)
    json_body_max_bytes: int = 10 * 1024 * 1024
    upload_file_size_limit: int = 15
    upload_image_file_size_limit: int = 10
    upload_video_file_size_limit: int = 100
    upload_audio_file_size_limit: int = 50
    workflow_file_upload_limit: int = 10
    # comma-separated extensions refused by POST /v1/files/upload (service-api §5.4), e.g. "exe,bat"
    upload_file_extension_blacklist: str = ""


class FileStorageSettings(BaseModel):
    """Where uploaded files live (``SLUICE_FILES__<NAME>``): the data directory, or an S3-compatible
    bucket so every replica and worker of a distributed deployment reads the same bytes."""

    storage: str = Field("local", pattern="^(local|s3)$")
    s3_bucket: str = "sluice"
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_address_style: str = "auto"


class UserApiSettings(BaseModel):
    """The user-scoped API (``/openapi/v1``), device flow and console session (openapi-user.md).

    Lists are comma-separated strings, as the spec writes them (``SLUICE_OPENAPI__KNOWN_CLIENT_IDS``).
    """

    enabled: bool = True
    cors_allow_origins: str = ""
    rate_limit_per_token: int = Field(60, ge=0)
    known_client_ids: str = "difyctl"
    oauth_ttl_days: int = 14
    oauth_access_token_retention_days: int = Field(30, ge=1)
    device_flow_approve_rate_limit_per_hour: int = 10
    console_web_url: str = ""
    console_session_ttl_hours: int = Field(168, ge=1)
    trusted_proxies: str = ""
    cleanup_interval_seconds: float = Field(3600, gt=0)

    @field_validator("oauth_ttl_days", mode="before")
    @classmethod
    def _ttl_days(cls, value: object) -> int:
        """Clamped to 1-365; a non-integer falls back to 14 with a warning (spec §2)."""
        try:
            days = int(str(value).strip())
        except ValueError:
            logging.getLogger("sluice").warning("OAUTH_TTL_DAYS=%r is not an integer; using 14", value)
            return 14
        return min(max(days, 1), 365)

    @field_validator("device_flow_approve_rate_limit_per_hour", mode="after")
    @classmethod
    def _approve_limit(cls, value: int) -> int:
        return max(value, 1)

    @staticmethod
    def split(value: str) -> list[str]:
        return [item.strip() for item in value.split(",") if item.strip()]


class NodeIoSettings(BaseModel):
    """The engine's I/O nodes: the code sandbox (§4.3), http-request and its SSRF guard (§4.5),
    files and document extraction (§4.12). ``SLUICE_IO__<NAME>``."""

    code_cpu_time_s: float = Field(10, gt=0)
    code_wall_time_s: float = Field(15, gt=0)
    code_memory_mb: int = Field(256, ge=32)
    code_stdout_bytes: int = Field(1024 * 1024, ge=1024)
    code_enable_network: bool = False
    code_python: str | None = None  # interpreter for python3 code; default: the server's own
    code_node: str | None = None  # JavaScript runtime; default: `node` on PATH
    http_allow_private_networks: bool = False
    # host names (`*.corp.example` too), IPs or CIDRs; JSON list or comma-separated
    http_allowed_hosts: Annotated[list[str], NoDecode] = []
    http_max_redirects: int = Field(20, ge=0)
    http_max_text_bytes: int = Field(1024 * 1024, ge=1)
    http_max_file_bytes: int = Field(10 * 1024 * 1024, ge=1)
    file_fetch_max_bytes: int = Field(15 * 1024 * 1024, ge=1)

    @field_validator("http_allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [item.strip() for item in text.split(",") if item.strip()]
        return value


class HumanInputSettings(BaseModel):
    """Human input (human-input.md §3.6): ``SLUICE_HUMAN_INPUT__<NAME>``."""

    global_timeout_seconds: int = 604800  # <= 0 disables the global expiry
    enable_timeout_task: bool = True
    timeout_task_interval: float = Field(1.0, gt=0)  # minutes
    timeout_task_batch: int = Field(100, ge=1)
    web_form_submit_rate_limit_max_attempts: int = 30
    web_form_submit_rate_limit_window_seconds: int = 60
    app_web_url: str | None = None  # form links; defaults to the public URL
    email_delivery_enabled: bool = True
    email_max_attempts: int = Field(3, ge=1)
    email_retry_delays_seconds: tuple[float, ...] = (30.0, 120.0)
    operator_email: str | None = None
    file_list_max: int = 10
    smtp_server: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_use_tls: bool = False
    smtp_opportunistic_tls: bool = False
    mail_default_send_from: str = "sluice@localhost"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SLUICE_", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    mode: Mode = Mode.embedded
    data_dir: Path = Path(".sluice")
    database_url: str | None = None
    redis_url: str | None = None
    secret_key: str | None = None
    public_url: str = "http://127.0.0.1:5001"
    host: str = "127.0.0.1"
    port: int = Field(5001, ge=1, le=65535)
    log_level: str = "info"
    demo_app: bool = True

    streaming: StreamingSettings = StreamingSettings()
    engine: EngineLimits = EngineLimits()
    api: ApiSettings = ApiSettings()
    openapi: UserApiSettings = UserApiSettings()
    io: NodeIoSettings = NodeIoSettings()
    files: FileStorageSettings = FileStorageSettings()
    human_input: HumanInputSettings = HumanInputSettings()

    @model_validator(mode="after")
    def _check_mode(self) -> Settings:
        if self.mode is Mode.distributed:
            if not self.redis_url:
                raise ValueError("SLUICE_REDIS_URL is required in distributed mode")
            if not self.database_url:
                raise ValueError("SLUICE_DATABASE_URL is required in distributed mode")
            if not self.secret_key:
                raise ValueError("SLUICE_SECRET_KEY is required in distributed mode")
        return self

    @property
    def sql_url(self) -> str:
        """The async SQLAlchemy URL: the configured one, else SQLite in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'sluice.db').resolve()}"

    def resolved_secret_key(self) -> str:
        """The configured secret, else one generated once into the data directory (embedded mode)."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()


def load_settings() -> Settings:
    return Settings()
