"""Request and response bodies of the user API (``/openapi/v1``), named as Dify's document names
them so generated clients match (openapi-user.md §10). Never table classes."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints


class ErrorDetail(BaseModel):
    type: str
    loc: list[str | int]
    msg: str


class ErrorBody(BaseModel):
    """The canonical error body; ``hint`` and ``details`` are omitted when empty."""

    code: str
    message: str
    status: int
    hint: str | None = None
    details: list[ErrorDetail] | None = None


class OAuthErrorBody(BaseModel):
    """A device-protocol answer (RFC 8628 style)."""

    error: str


class HealthResponse(BaseModel):
    ok: bool


class AccountPayload(BaseModel):
    id: str
    email: str
    name: str


class WorkspacePayload(BaseModel):
    id: str
    name: str
    role: str


class AccountResponse(BaseModel):
    subject_type: str
    subject_email: str | None
    subject_issuer: str | None
    account: AccountPayload | None
    workspaces: list[WorkspacePayload]
    default_workspace_id: str | None


class SessionRow(BaseModel):
    id: str
    prefix: str
    client_id: str
    device_label: str
    created_at: str | None
    last_used_at: str | None
    expires_at: str | None


class SessionListResponse(BaseModel):
    page: int
    limit: int
    total: int
    has_more: bool
    data: list[SessionRow]


class RevokeResponse(BaseModel):
    status: str


class WorkspaceSummaryResponse(BaseModel):
    id: str
    name: str
    role: str
    status: str
    current: bool


class WorkspaceListResponse(BaseModel):
    workspaces: list[WorkspaceSummaryResponse]


class WorkspaceDetailResponse(BaseModel):
    id: str
    name: str
    role: str
    status: str
    current: bool
    created_at: str | None


class AppMode(StrEnum):
    completion = "completion"
    chat = "chat"
    advanced_chat = "advanced-chat"
    workflow = "workflow"
    agent_chat = "agent-chat"


class TagItem(BaseModel):
    name: str


class AppListRow(BaseModel):
    id: str
    name: str
    description: str
    mode: AppMode
    updated_at: str | None
    workspace_id: str
    workspace_name: str
    tags: list[TagItem]
    created_by_name: str | None


class AppListResponse(BaseModel):
    page: int
    limit: int
    total: int
    has_more: bool
    data: list[AppListRow]


class PermittedExternalAppsListResponse(BaseModel):
    page: int
    limit: int
    total: int
    has_more: bool
    data: list[AppListRow]


class AppDescribeInfo(BaseModel):
    id: str
    name: str
    mode: str
    description: str
    updated_at: str | None
    service_api_enabled: bool
    is_agent: bool
    tags: list[TagItem]
    author: str | None


class AppDescribeResponse(BaseModel):
    info: AppDescribeInfo | None
    parameters: dict[str, Any] | None
    input_schema: dict[str, Any] | None


class AppRunRequest(BaseModel):
    """Unknown keys (``user``, ``response_mode``, …) are ignored: the answer is always a stream."""

    model_config = ConfigDict(extra="ignore")

    inputs: dict[str, Any]
    query: str | None = None
    files: list[dict[str, Any]] | None = None
    conversation_id: str | None = None
    auto_generate_name: bool = True
    workflow_id: str | None = None
    workspace_id: str | None = None


Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]


class DeviceCodeRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    client_id: str = Field(min_length=1, max_length=64)
    device_label: Label


class DeviceCodeResponse(BaseModel):
    device_code: str
    user_code: str
    verification_uri: str
    expires_in: int
    interval: int


class DevicePollRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    device_code: str
    client_id: str


class DeviceTokenResponse(BaseModel):
    token: str
    expires_at: str
    subject_type: str
    account: AccountPayload
    workspaces: list[WorkspacePayload]
    default_workspace_id: str | None
    token_id: str


class DeviceLookupResponse(BaseModel):
    valid: bool
    expires_in_remaining: int
    client_id: str | None


class DeviceMutateRequest(BaseModel):
    """Other keys (a forged ``account_id``, ``workspace_id``, …) are ignored."""

    model_config = ConfigDict(extra="ignore")

    user_code: str


class DeviceMutateResponse(BaseModel):
    status: str


REQUEST_SCHEMAS = (AppRunRequest, DeviceCodeRequest, DevicePollRequest, DeviceMutateRequest)
