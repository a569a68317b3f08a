"""Bodies of the minimal console API (``/console/api``); never table classes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ConsoleLoginRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    email: str = Field(min_length=1, max_length=255)
    password: str = Field(min_length=1, max_length=1024)


class ConsoleWorkspace(BaseModel):
    id: str
    name: str
    role: str
    status: str
    current: bool


class ConsoleAccount(BaseModel):
    id: str
    email: str
    name: str


class ConsoleSessionResponse(BaseModel):
    """The signed-in account, its workspaces, and the CSRF token to send as ``X-CSRF-Token``."""

    account: ConsoleAccount
    workspaces: list[ConsoleWorkspace]
    current_workspace_id: str | None
    csrf_token: str


class ConsoleResult(BaseModel):
    result: str = "success"


class AppImportRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    yaml_content: str = Field(min_length=1)
    workspace_id: str | None = None


class AppImportResponse(BaseModel):
    app_id: str
    workflow_id: str
    status: str
    warnings: list[dict[str, Any]]


class ConsoleApp(BaseModel):
    id: str
    name: str
    mode: str
    description: str
    enable_api: bool
    workspace_id: str
    published_workflow_id: str | None
    created_at: str | None


class ConsoleAppList(BaseModel):
    data: list[ConsoleApp]


class ApiKeyResponse(BaseModel):
    """The key is shown once."""

    token: str
    app_id: str


class ApiEnableRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    enable_api: bool


class ApiEnableResponse(BaseModel):
    enable_api: bool


class ConsoleRun(BaseModel):
    id: str
    task_id: str
    status: str
    created_from: str
    created_by_role: str
    created_by: str
    error: str | None
    elapsed_time: float
    total_steps: int
    created_at: str | None
    finished_at: str | None


class ConsoleRunPage(BaseModel):
    page: int
    limit: int
    total: int
    has_more: bool
    data: list[ConsoleRun]


REQUEST_SCHEMAS = (ConsoleLoginRequest, AppImportRequest, ApiEnableRequest)
