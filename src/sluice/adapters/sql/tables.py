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
from sqlalchemy import JSON, Column, ForeignKeyConstraint, Index, Text, UniqueConstraint, text
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
    pending_events_at: NaiveDatetime | None = Field(default=None, index=True)  # outbox filled at (reaper)


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


# -- user API: bearer tokens, device flow, console sessions (openapi-user.md §9) ----------------------

_LIVE_TOKEN = "revoked_at IS NULL"


class OAuthAccessToken(SQLModel, table=True):
    """A ``dfoa_`` bearer token (= a session). Only the SHA-256 is kept; revoked rows have none.

    One live token per (subject, client, device label): a partial unique index enforces rotation.
    """

    __tablename__ = "oauth_access_tokens"
    __table_args__ = (
        Index(
            "uq_oauth_access_tokens_live_subject",
            "subject_email",
            "subject_issuer",
            "client_id",
            "device_label",
            unique=True,
            sqlite_where=text(_LIVE_TOKEN),
            postgresql_where=text(_LIVE_TOKEN),
        ),
        Index(
            "ix_oauth_access_tokens_live_account",
            "account_id",
            sqlite_where=text(_LIVE_TOKEN),
            postgresql_where=text(_LIVE_TOKEN),
        ),
    )

    id: str = _id()
    subject_email: str = Field(max_length=255)
    subject_issuer: str = Field(max_length=64)  # "dify:account" for accounts
    account_id: str | None = Field(
        default=None, foreign_key="accounts.id", ondelete="SET NULL", nullable=True, max_length=36
    )
    client_id: str = Field(max_length=64)
    device_label: str = Field(max_length=255)
    prefix: str = Field(max_length=8)
    token_hash: str | None = Field(default=None, max_length=64, unique=True)
    created_at: NaiveDatetime = _created_at()
    last_used_at: NaiveDatetime | None = None  # never written (as Dify)
    expires_at: NaiveDatetime
    revoked_at: NaiveDatetime | None = None


class DeviceAuthorization(SQLModel, table=True):
    """One device-flow request: pending → approved | denied → consumed by the first poll."""

    __tablename__ = "device_authorizations"

    id: str = _id()
    device_code_hash: str = Field(max_length=64, unique=True)
    user_code: str = Field(max_length=9, unique=True)
    client_id: str = Field(max_length=64)
    device_label: str = Field(max_length=255)
    status: str = Field(default="pending", max_length=16)  # pending | approved | denied
    created_ip: str = Field(default="", max_length=64)
    created_at: NaiveDatetime = _created_at()
    expires_at: NaiveDatetime = Field(index=True)
    approved_account_id: str | None = Field(default=None, max_length=36)
    approved_tenant_id: str | None = Field(default=None, max_length=36)
    resolved_at: NaiveDatetime | None = None
    consumed_at: NaiveDatetime | None = None
    token_id: str | None = Field(default=None, max_length=36)


class ConsoleSession(SQLModel, table=True):
    """A console login (cookie ``sluice_session``, stored as SHA-256) with its CSRF token."""

    __tablename__ = "console_sessions"

    id: str = _id()
    session_hash: str = Field(max_length=64, unique=True)
    account_id: str = Field(foreign_key="accounts.id", ondelete="CASCADE", max_length=36, index=True)
    csrf_token: str = Field(max_length=64)
    current_tenant_id: str | None = Field(default=None, max_length=36)
    created_at: NaiveDatetime = _created_at()
    expires_at: NaiveDatetime
    last_seen_at: NaiveDatetime = _created_at()


# -- runtime: segments and their tries (streaming.md §8) ----------------------------------------------


class RunSegment(SQLModel, table=True):
    """A run from its start or a resume until it pauses, ends or is stopped (human-input's attempt).

    Stop requests live here (``stop_requested_at``), so a stop never outlives its segment.
    """

    __tablename__ = "run_segments"
    __table_args__ = (UniqueConstraint("run_id", "number"),)

    id: str = _id()
    run_id: str = Field(foreign_key="workflow_runs.id", ondelete="CASCADE", max_length=36)
    number: int = 0
    reason: str = Field(default="initial", max_length=16)  # initial | resumption
    status: str = Field(default="queued", max_length=16)  # queued | active | ended | cancelled
    end_reason: str | None = Field(default=None, max_length=32)  # the run status it ended with, or paused
    active_try_id: str | None = Field(default=None, max_length=36)
    stop_requested_at: NaiveDatetime | None = None
    created_at: NaiveDatetime = _created_at()
    ended_at: NaiveDatetime | None = None


class SegmentTry(SQLModel, table=True):
    """One execution of a segment: the first, plus one per crash recovery. Owns a lease, a fence
    (``workflow_runs.fence`` when it was created) and one job id (``seg-try:<id>``)."""

    __tablename__ = "segment_tries"
    __table_args__ = (Index(None, "status", "lease_expires_at"),)

    id: str = _id()
    segment_id: str = Field(foreign_key="run_segments.id", ondelete="CASCADE", max_length=36, index=True)
    run_id: str = Field(max_length=36, index=True)
    number: int = 1
    status: str = Field(default="queued", max_length=16)  # queued | active | done | abandoned | cancelled
    fence: int = 0
    job_id: str = Field(max_length=64)
    worker_id: str | None = Field(default=None, max_length=255)
    lease_expires_at: NaiveDatetime | None = None
    created_at: NaiveDatetime = _created_at()
    claimed_at: NaiveDatetime | None = None
    ended_at: NaiveDatetime | None = None


# -- service API: uploaded files, conversations and messages (service-api.md §5.4, §5.8, §9) ---------


class UploadFile(SQLModel, table=True):
    """An uploaded file: bytes in the file store under ``storage_key``, scoped to its workspace."""

    __tablename__ = "upload_files"
    __table_args__ = (Index(None, "tenant_id", "created_at"),)

    id: str = _id()
    tenant_id: str = Field(max_length=36)
    app_id: str | None = Field(default=None, max_length=36)
    storage_key: str = Field(max_length=512)
    name: str = Field(max_length=255)
    size: int = 0
    extension: str = Field(max_length=32)
    mime_type: str = Field(max_length=255)
    content_hash: str = Field(max_length=64)
    created_by_role: str = Field(max_length=16)  # end_user | account
    created_by: str = Field(max_length=36)
    created_at: NaiveDatetime = _created_at()
    used: bool = False
    used_by: str | None = Field(default=None, max_length=36)
    used_at: NaiveDatetime | None = None


class Conversation(SQLModel, table=True):
    """An advanced-chat conversation; ``inputs`` are the first turn's validated inputs."""

    __tablename__ = "conversations"
    __table_args__ = (Index(None, "app_id", "from_end_user_id", "updated_at"),)

    id: str = _id()
    tenant_id: str = Field(max_length=36)
    app_id: str = Field(foreign_key="apps.id", ondelete="CASCADE", max_length=36)
    from_end_user_id: str | None = Field(default=None, max_length=36)
    from_account_id: str | None = Field(default=None, max_length=36)
    name: str = Field(default="", max_length=255)
    inputs: dict[str, Any] = _json(nullable=False, default_factory=dict)
    status: str = Field(default="normal", max_length=16)  # normal | archived
    is_deleted: bool = False
    created_at: NaiveDatetime = _created_at()
    updated_at: NaiveDatetime = _updated_at()


class Message(SQLModel, table=True):
    """One chat turn. ``answer``/``error`` are copied from its run once that run ended (``settled``)."""

    __tablename__ = "messages"
    __table_args__ = (Index(None, "conversation_id", "created_at"),)

    id: str = _id()
    conversation_id: str = Field(foreign_key="conversations.id", ondelete="CASCADE", max_length=36)
    app_id: str = Field(max_length=36)
    workflow_run_id: str = Field(max_length=36, index=True)
    from_end_user_id: str | None = Field(default=None, max_length=36)
    inputs: dict[str, Any] = _json(nullable=False, default_factory=dict)
    query: str = Field(default="", sa_type=Text)
    answer: str = Field(default="", sa_type=Text)
    status: str = Field(default="normal", max_length=16)  # normal | error | stopped
    error: str | None = Field(default=None, sa_type=Text)
    settled: bool = False
    created_at: NaiveDatetime = _created_at()


class ConversationVariable(SQLModel, table=True):
    """A conversation variable's current value (written back after each turn's run)."""

    __tablename__ = "conversation_variables"
    __table_args__ = (UniqueConstraint("conversation_id", "name"),)

    id: str = _id()
    conversation_id: str = Field(foreign_key="conversations.id", ondelete="CASCADE", max_length=36)
    app_id: str = Field(max_length=36)
    name: str = Field(max_length=255)
    value_type: str = Field(max_length=32)
    value: Any = _json(nullable=True)
    description: str = Field(default="", sa_type=Text)
    created_at: NaiveDatetime = _created_at()
    updated_at: NaiveDatetime = _updated_at()


class MessageFeedback(SQLModel, table=True):
    __tablename__ = "message_feedbacks"
    __table_args__ = (UniqueConstraint("message_id", "from_end_user_id"),)

    id: str = _id()
    app_id: str = Field(max_length=36)
    conversation_id: str = Field(max_length=36)
    message_id: str = Field(foreign_key="messages.id", ondelete="CASCADE", max_length=36)
    rating: str = Field(max_length=16)  # like | dislike
    content: str | None = Field(default=None, sa_type=Text)
    from_end_user_id: str = Field(max_length=36)
    created_at: NaiveDatetime = _created_at()
    updated_at: NaiveDatetime = _updated_at()


__all__ = [
    "Account",
    "ApiKey",
    "App",
    "ConsoleSession",
    "Conversation",
    "ConversationVariable",
    "DeviceAuthorization",
    "EndUser",
    "Message",
    "MessageFeedback",
    "OAuthAccessToken",
    "RunSegment",
    "SegmentTry",
    "Tag",
    "TagBinding",
    "Tenant",
    "TenantAccountJoin",
    "UploadFile",
    "Workflow",
    "WorkflowAppLog",
    "WorkflowNodeExecution",
    "WorkflowRun",
    "metadata",
    "new_id",
    "utcnow",
]


# -- human input: forms, deliveries, recipients, pauses, resume requests (human-input.md §3) -------


class HumanInputForm(SQLModel, table=True):
    """One request for an answer from one node execution; every transition is conditional on
    ``status = 'waiting'`` (human-input.md §3.5)."""

    __tablename__ = "human_input_forms"
    __table_args__ = (
        Index(None, "workflow_run_id", "node_id"),
        Index(None, "status", "expiration_time"),
        Index(None, "status", "created_at"),
    )

    id: str = _id()
    tenant_id: str = Field(max_length=36)
    app_id: str = Field(max_length=36)
    workflow_run_id: str | None = Field(default=None, max_length=36)
    node_id: str = Field(max_length=255)
    node_execution_id: str | None = Field(default=None, max_length=36, unique=True)
    form_kind: str = Field(default="runtime", max_length=16)  # runtime | delivery_test
    form_definition: dict[str, Any] = _json(nullable=False, default_factory=dict)
    rendered_content: str = Field(default="", sa_type=Text)
    status: str = Field(default="waiting", max_length=16)  # waiting | submitted | timeout | expired
    expiration_time: NaiveDatetime
    selected_action_id: str | None = Field(default=None, max_length=200)
    submitted_data: dict[str, Any] | None = _json(nullable=True)
    submitted_at: NaiveDatetime | None = None
    submission_user_id: str | None = Field(default=None, max_length=36)
    submission_end_user_id: str | None = Field(default=None, max_length=36)
    completed_by_recipient_id: str | None = Field(default=None, max_length=36)
    closed_reason: str | None = Field(default=None, max_length=32)
    created_at: NaiveDatetime = _created_at()
    updated_at: NaiveDatetime = _created_at()


class HumanInputDelivery(SQLModel, table=True):
    __tablename__ = "human_input_form_deliveries"

    id: str = _id()
    form_id: str = Field(foreign_key="human_input_forms.id", ondelete="CASCADE", max_length=36, index=True)
    delivery_method_type: str = Field(max_length=16)  # webapp | email
    delivery_config_id: str | None = Field(default=None, max_length=36)
    channel_payload: dict[str, Any] = _json(nullable=False, default_factory=dict)
    send_status: str = Field(default="not_applicable", max_length=16)
    skip_reason: str | None = Field(default=None, max_length=32)


class HumanInputRecipient(SQLModel, table=True):
    __tablename__ = "human_input_form_recipients"

    id: str = _id()
    form_id: str = Field(foreign_key="human_input_forms.id", ondelete="CASCADE", max_length=36, index=True)
    delivery_id: str = Field(max_length=36)
    recipient_type: str = Field(max_length=32)
    recipient_payload: dict[str, Any] = _json(nullable=False, default_factory=dict)
    access_token: str = Field(max_length=32, unique=True)
    send_status: str | None = Field(default=None, max_length=16)
    send_attempts: int = 0
    last_error: str | None = Field(default=None, sa_type=Text)
    sent_at: NaiveDatetime | None = None


class WorkflowPause(SQLModel, table=True):
    """The run's open (or last) pause; reasons keep only ``form_id``/``node_id`` (§2.3)."""

    __tablename__ = "workflow_pauses"

    id: str = _id()
    workflow_id: str = Field(max_length=36)
    workflow_run_id: str = Field(max_length=36, unique=True)
    segment: int = 0
    reasons: list[Any] = _json(nullable=False, default_factory=list)
    created_at: NaiveDatetime = _created_at()
    resumed_at: NaiveDatetime | None = None
    closed_reason: str | None = Field(default=None, max_length=32)  # resumed | global_timeout | run_stopped


class WorkflowResumeRequest(SQLModel, table=True):
    """The resume outbox: one row per answered (or timed-out) form; consumed exactly once."""

    __tablename__ = "workflow_resume_requests"
    __table_args__ = (Index(None, "workflow_run_id", "consumed_at"),)

    id: str = _id()
    workflow_run_id: str = Field(max_length=36)
    form_id: str | None = Field(default=None, max_length=36, unique=True)
    cause: str = Field(max_length=16)  # submitted | timeout
    created_at: NaiveDatetime = _created_at()
    enqueued_at: NaiveDatetime | None = None
    consumed_at: NaiveDatetime | None = None
    consumed_by_attempt: str | None = Field(default=None, max_length=36)


class ModelProviderRow(SQLModel, table=True):
    """An OpenAI-compatible model provider; a DSL's ``model.provider`` maps to it by ``name``."""

    __tablename__ = "model_providers"

    id: str = _id()
    name: str = Field(max_length=255, unique=True)
    base_url: str = Field(max_length=1024)
    api_key_encrypted: str = Field(sa_type=Text)  # Fernet token; the key never rests in plain text
    created_at: NaiveDatetime = _created_at()
    updated_at: NaiveDatetime = _updated_at()
