"""All settings, read once at start from ``SLUICE_*`` environment variables (or ``.env``).

Nested groups use ``__`` (``SLUICE_STREAMING__SSE_PING_INTERVAL_SECONDS``); the few that every
deployment touches sit at the top level.
"""

from __future__ import annotations

import secrets
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Mode(StrEnum):
    embedded = "embedded"
    distributed = "distributed"


class StreamingSettings(BaseModel):
    pubsub_streams_retention_seconds: int = Field(600, ge=60)
    event_log_paused_retention_seconds: int = Field(600, ge=60)
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

    @model_validator(mode="after")
    def _check(self) -> StreamingSettings:
        if self.sse_ping_interval_seconds >= self.sse_idle_timeout_seconds:
            raise ValueError("sse_ping_interval_seconds must be below sse_idle_timeout_seconds")
        if 2 * self.heartbeat_interval_seconds >= self.lease_ttl_seconds:
            raise ValueError("2 x heartbeat_interval_seconds must be below lease_ttl_seconds")
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
