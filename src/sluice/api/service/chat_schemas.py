"""Request and response bodies of the Service API's files, chat and conversation routes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sluice.api.service.schemas import FileInput


class FileResponse(BaseModel):
    id: str
    name: str
    size: int
    extension: str
    mime_type: str
    created_by: str
    created_at: int
    preview_url: str | None = None
    source_url: str | None = None


class ChatMessageRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    query: str
    inputs: dict[str, Any]
    response_mode: Literal["blocking", "streaming"] = "blocking"
    user: str
    conversation_id: str | None = None
    files: list[FileInput] | None = None
    auto_generate_name: bool = True
    workflow_id: str | None = None


class ChatUsage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    latency: float = 0


class ChatMetadata(BaseModel):
    usage: ChatUsage
    retriever_resources: list[Any] = Field(default_factory=list)


class ChatBlockingResponse(BaseModel):
    event: str = "message"
    task_id: str
    id: str
    message_id: str
    conversation_id: str
    mode: str = "advanced-chat"
    answer: str
    metadata: ChatMetadata
    created_at: int


class ConversationItem(BaseModel):
    id: str
    name: str
    inputs: dict[str, Any]
    status: str
    introduction: str = ""
    created_at: int
    updated_at: int


class ConversationPage(BaseModel):
    limit: int
    has_more: bool
    data: list[ConversationItem]


class RenameConversationRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str | None = None
    auto_generate: bool = False
    user: str


class MessageFeedbackBody(BaseModel):
    rating: str


class MessageItem(BaseModel):
    id: str
    conversation_id: str
    parent_message_id: str | None = None
    inputs: dict[str, Any]
    query: str
    answer: str
    message_files: list[Any] = Field(default_factory=list)
    feedback: MessageFeedbackBody | None = None
    retriever_resources: list[Any] = Field(default_factory=list)
    agent_thoughts: list[Any] = Field(default_factory=list)
    created_at: int
    status: str
    error: str | None = None


class MessagePage(BaseModel):
    limit: int
    has_more: bool
    data: list[MessageItem]


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    rating: Literal["like", "dislike"] | None = None
    user: str
    content: str | None = None


class ConversationVariableItem(BaseModel):
    id: str
    name: str
    value_type: str
    value: Any = None
    description: str = ""
    created_at: int
    updated_at: int


class ConversationVariablePage(BaseModel):
    limit: int
    has_more: bool
    data: list[ConversationVariableItem]
