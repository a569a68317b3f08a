"""The SQL tables: SQLModel classes, one per table, all in this module.

These are storage rows only; request and response bodies are separate pydantic models. Ids are
UUID strings (callers usually pass their own), timestamps are naive UTC. Constraint and index
names come from the naming convention below, so Alembic sees the same names on every backend.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from pydantic import NaiveDatetime
from sqlalchemy import JSON, Column, ForeignKeyConstraint, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = SQLModel.metadata


def new_id() -> str:
    return str(uuid4())


def utcnow() -> datetime:
    """The current time as a naive UTC datetime (the stored form)."""
    return datetime.now(UTC).replace(tzinfo=None)


def _id() -> Any:
    return Field(default_factory=new_id, primary_key=True, max_length=36)


def _created_at() -> Any:
    return Field(default_factory=utcnow)


def _updated_at() -> Any:
    return Field(default_factory=utcnow, sa_column_kwargs={"onupdate": utcnow})


def _json(*, nullable: bool, default_factory: Callable[[], Any] | None = None) -> Any:
    if default_factory is None:
        return Field(default=None, sa_column=Column(JSON, nullable=nullable))
    return Field(default_factory=default_factory, sa_column=Column(JSON, nullable=nullable))


class Tenant(SQLModel, table=True):
    """A workspace."""

    __tablename__ = "tenants"

    id: str = _id()
    name: str = Field(max_length=255)
    status: str = Field(default="normal", max_length=16)  # normal | archive
    created_at: NaiveDatetime = _created_at()
    updated_at: NaiveDatetime = _updated_at()


class Account(SQLModel, table=True):
    __tablename__ = "accounts"

    id: str = _id()
    name: str = Field(max_length=255)
    email: str = Field(max_length=255, unique=True)  # stored lower-case
    password_hash: str | None = Field(default=None, max_length=255)
    status: str = Field(default="active", max_length=16)
    last_login_at: NaiveDatetime | None = None
    created_at: NaiveDatetime = _created_at()
    updated_at: NaiveDatetime = _updated_at()


class TenantAccountJoin(SQLModel, table=True):
    """A membership: an account's role in a workspace."""

    __tablename__ = "tenant_account_joins"
    __table_args__ = (UniqueConstraint("tenant_id", "account_id"),)

    id: str = _id()
    tenant_id: str = Field(foreign_key="tenants.id", ondelete="CASCADE", max_length=36)
    account_id: str = Field(foreign_key="accounts.id", ondelete="CASCADE", max_length=36, index=True)
    role: str = Field(max_length=16)  # owner | admin | editor | normal
    current: bool = False  # the account's current workspace (at most one per account)
    created_at: NaiveDatetime = _created_at()


class App(SQLModel, table=True):
    __tablename__ = "apps"
    __table_args__ = (
        # apps <-> workflows is a cycle: this side is added after both tables exist (use_alter).
        ForeignKeyConstraint(["workflow_id"], ["workflows.id"], ondelete="SET NULL", use_alter=True),
        Index(None, "tenant_id", "updated_at"),
    )

    id: str = _id()
    tenant_id: str = Field(foreign_key="tenants.id", ondelete="CASCADE", max_length=36)
    name: str = Field(max_length=255)
    description: str = Field(default="", sa_type=Text)
    mode: str = Field(max_length=32)  # workflow | advanced-chat | chat | completion | agent-chat
    status: str = Field(default="normal", max_length=16)
    enable_api: bool = True
    workflow_id: str | None = Field(default=None, max_length=36)  # the published version
    icon_type: str | None = Field(default=None, max_length=255)
    icon: str | None = Field(default=None, max_length=255)
    icon_background: str | None = Field(default=None, max_length=255)
    created_by: str | None = Field(default=None, max_length=36)
    updated_by: str | None = Field(default=None, max_length=36)
    created_at: NaiveDatetime = _created_at()
    updated_at: NaiveDatetime = _updated_at()


class Workflow(SQLModel, table=True):
    """One version of an app: the draft, or a published snapshot."""

    __tablename__ = "workflows"
    __table_args__ = (UniqueConstraint("app_id", "version"),)

    id: str = _id()
    tenant_id: str = Field(max_length=36)
    app_id: str = Field(foreign_key="apps.id", ondelete="CASCADE", max_length=36)
    version: str = Field(max_length=64)  # "draft" or the publish time "YYYY-MM-DD HH:MM:SS.ffffff"
    dsl: str = Field(sa_type=Text)  # the imported DSL, verbatim
    graph: dict[str, Any] = _json(nullable=False, default_factory=dict)
    features: dict[str, Any] = _json(nullable=False, default_factory=dict)
    environment_variables: list[Any] = _json(nullable=False, default_factory=list)
    conversation_variables: list[Any] = _json(nullable=False, default_factory=list)
    fingerprint: str = Field(default="", max_length=64)
    created_by: str | None = Field(default=None, max_length=36)
    created_at: NaiveDatetime = _created_at()


class Tag(SQLModel, table=True):
    __tablename__ = "tags"
    __table_args__ = (Index(None, "tenant_id", "type"),)

    id: str = _id()
    tenant_id: str = Field(max_length=36)
    type: str = Field(default="app", max_length=16)
    name: str = Field(max_length=50)
    created_at: NaiveDatetime = _created_at()


class TagBinding(SQLModel, table=True):
    __tablename__ = "tag_bindings"
    __table_args__ = (UniqueConstraint("tag_id", "target_id"),)

    id: str = _id()
    tenant_id: str = Field(max_length=36)
    tag_id: str = Field(foreign_key="tags.id", ondelete="CASCADE", max_length=36)
    target_id: str = Field(max_length=36, index=True)
    created_at: NaiveDatetime = _created_at()


class ApiKey(SQLModel, table=True):
    """An app API key, stored as the hex SHA-256 of the whole key plus display hints."""

    __tablename__ = "api_keys"

    id: str = _id()
    tenant_id: str = Field(max_length=36)
    app_id: str = Field(foreign_key="apps.id", ondelete="CASCADE", max_length=36, index=True)
    type: str = Field(default="app", max_length=16)
    token_hash: str = Field(max_length=64, unique=True)
    token_prefix: str = Field(max_length=8)
    token_last4: str = Field(max_length=4)
    created_by: str | None = Field(default=None, max_length=36)
    created_at: NaiveDatetime = _created_at()
    last_used_at: NaiveDatetime | None = None


class EndUser(SQLModel, table=True):
    __tablename__ = "end_users"
    __table_args__ = (UniqueConstraint("app_id", "type", "session_id"),)

    id: str = _id()
    tenant_id: str = Field(max_length=36)
    app_id: str = Field(foreign_key="apps.id", ondelete="CASCADE", max_length=36)
    type: str = Field(max_length=16)  # service_api | openapi
    session_id: str = Field(max_length=255)
    is_anonymous: bool = False
    name: str | None = Field(default=None, max_length=255)
    external_user_id: str | None = Field(default=None, max_length=255)
    created_at: NaiveDatetime = _created_at()
    updated_at: NaiveDatetime = _updated_at()


class WorkflowRun(SQLModel, table=True):
    """A run, plus the columns the runtime uses to own it (fence, lease, segment, buffered events)."""

    __tablename__ = "workflow_runs"
    __table_args__ = (Index(None, "app_id", "created_at"),)

    id: str = _id()
    tenant_id: str = Field(max_length=36)
    app_id: str = Field(max_length=36)
    workflow_id: str = Field(max_length=36)
    task_id: str = Field(max_length=36, unique=True)
    version: str = Field(max_length=64)
    triggered_from: str = Field(default="app-run", max_length=32)
    created_from: str = Field(default="service-api", max_length=32)
    inputs: dict[str, Any] = _json(nullable=False, default_factory=dict)
    outputs: dict[str, Any] | None = _json(nullable=True)
    status: str = Field(default="running", max_length=32, index=True)
    error: str | None = Field(default=None, sa_type=Text)
    elapsed_time: float = 0
    total_tokens: int = 0
    total_steps: int = 0
    exceptions_count: int = 0
    created_by_role: str = Field(max_length=16)  # end_user | account
    created_by: str = Field(max_length=36)
    created_at: NaiveDatetime = _created_at()
    finished_at: NaiveDatetime | None = None
    fence: int = 0
    stop_requested_at: NaiveDatetime | None = None
    worker_id: str | None = Field(default=None, max_length=255)
    lease_expires_at: NaiveDatetime | None = None
    segment: int = 0
    pending_events: list[Any] | None = _json(nullable=True)
    final_event: dict[str, Any] | None = _json(nullable=True)


class WorkflowNodeExecution(SQLModel, table=True):
    """One node execution of a run; ``event`` keeps the engine's terminal event for replay."""

    __tablename__ = "workflow_node_executions"
    __table_args__ = (Index(None, "workflow_run_id", "index"),)

    id: str = _id()
    tenant_id: str = Field(max_length=36)
    app_id: str = Field(max_length=36)
    workflow_id: str = Field(max_length=36)
    workflow_run_id: str = Field(foreign_key="workflow_runs.id", ondelete="CASCADE", max_length=36)
    segment: int = 0
    index: int
    predecessor_node_id: str | None = Field(default=None, max_length=255)
    node_id: str = Field(max_length=255)
    node_type: str = Field(max_length=64)
    title: str = Field(default="", max_length=255)
    inputs: dict[str, Any] | None = _json(nullable=True)
    process_data: dict[str, Any] | None = _json(nullable=True)
    outputs: dict[str, Any] | None = _json(nullable=True)
    status: str = Field(max_length=32)  # running | succeeded | failed | exception | stopped | retry
    error: str | None = Field(default=None, sa_type=Text)
    error_type: str | None = Field(default=None, max_length=255)
    elapsed_time: float = 0
    execution_metadata: dict[str, Any] | None = _json(nullable=True)
    container_id: str = Field(default="", max_length=255)
    event: dict[str, Any] | None = _json(nullable=True)
    created_at: NaiveDatetime = _created_at()
    finished_at: NaiveDatetime | None = None


class WorkflowAppLog(SQLModel, table=True):
    __tablename__ = "workflow_app_logs"
    __table_args__ = (Index(None, "app_id", "created_at"),)

    id: str = _id()
    tenant_id: str = Field(max_length=36)
    app_id: str = Field(max_length=36)
    workflow_id: str = Field(max_length=36)
    workflow_run_id: str = Field(max_length=36, unique=True)
    created_from: str = Field(max_length=32)  # service-api | openapi | web-app
    created_by_role: str = Field(max_length=16)
    created_by: str = Field(max_length=36)
    created_at: NaiveDatetime = _created_at()


__all__ = [
    "Account",
    "ApiKey",
    "App",
    "EndUser",
    "Tag",
    "TagBinding",
    "Tenant",
    "TenantAccountJoin",
    "Workflow",
    "WorkflowAppLog",
    "WorkflowNodeExecution",
    "WorkflowRun",
    "metadata",
    "new_id",
    "utcnow",
]
