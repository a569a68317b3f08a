"""Request and response bodies of the Service API (``/v1``); never table classes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ServiceApiError(BaseModel):
    code: str
    message: str
    status: int


class FileInput(BaseModel):
    type: Literal["document", "image", "audio", "video", "custom"]
    transfer_method: Literal["remote_url", "local_file"]
    url: str | None = None
    upload_file_id: str | None = None


class WorkflowRunRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    inputs: dict[str, Any]
    response_mode: Literal["blocking", "streaming"] = "blocking"
    user: str
    files: list[FileInput] | None = None


class TaskStopRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    user: str


class SimpleResultResponse(BaseModel):
    result: str = "success"


class WorkflowRunData(BaseModel):
    id: str
    workflow_id: str
    status: str
    outputs: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    elapsed_time: float = 0
    total_tokens: int = 0
    total_steps: int = 0
    created_at: int
    finished_at: int | None = None


class WorkflowBlockingResponse(BaseModel):
    workflow_run_id: str
    task_id: str
    data: WorkflowRunData


class WorkflowRunDetail(BaseModel):
    id: str
    workflow_id: str
    status: str
    inputs: str
    outputs: dict[str, Any]
    error: str | None
    total_steps: int
    total_tokens: int
    created_at: int
    finished_at: int | None
    elapsed_time: float


class AppInfoResponse(BaseModel):
    name: str
    description: str
    tags: list[str]
    mode: str
    author_name: str | None


class AppParametersResponse(BaseModel):
    model_config = ConfigDict(extra="allow")

    opening_statement: str | None
    suggested_questions: list[Any]
    suggested_questions_after_answer: dict[str, Any]
    speech_to_text: dict[str, Any]
    text_to_speech: dict[str, Any]
    retriever_resource: dict[str, Any]
    annotation_reply: dict[str, Any]
    more_like_this: dict[str, Any]
    user_input_form: list[dict[str, Any]]
    sensitive_word_avoidance: dict[str, Any]
    file_upload: dict[str, Any]
    system_parameters: dict[str, Any]


class WorkflowRunForLog(BaseModel):
    id: str
    version: str | None
    status: str
    triggered_from: str | None
    error: str | None
    elapsed_time: float
    total_tokens: int
    total_steps: int
    created_at: int
    finished_at: int | None
    exceptions_count: int


class SimpleAccount(BaseModel):
    id: str
    name: str
    email: str


class SimpleEndUser(BaseModel):
    id: str
    type: str
    is_anonymous: bool
    session_id: str


class WorkflowLogItem(BaseModel):
    id: str
    workflow_run: WorkflowRunForLog
    details: dict[str, Any] | None
    created_from: str
    created_by_role: str
    created_by_account: SimpleAccount | None
    created_by_end_user: SimpleEndUser | None
    created_at: int


class WorkflowLogPage(BaseModel):
    page: int
    limit: int
    total: int
    has_more: bool
    data: list[WorkflowLogItem]
