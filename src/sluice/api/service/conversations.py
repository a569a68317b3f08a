"""Conversation routes Dify's chat clients call (docs/spec-additions.md): list, messages, rename,
delete, conversation variables, message feedback."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from sluice.adapters.sql.tables import Conversation
from sluice.api.body import end_user_arg, json_object, validate
from sluice.api.deps import AppAuthDep, ContainerDep
from sluice.api.service.chat_schemas import (
    ConversationItem,
    ConversationPage,
    ConversationVariableItem,
    ConversationVariablePage,
    FeedbackRequest,
    MessageFeedbackBody,
    MessageItem,
    MessagePage,
    RenameConversationRequest,
)
from sluice.api.service.schemas import ServiceApiError, SimpleResultResponse, TaskStopRequest
from sluice.runtime.dify_events import epoch
from sluice.services.conversations import ConversationService
from sluice.services.errors import ServiceUnavailable

router = APIRouter(tags=["chatflows"])
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ServiceApiError} for status in (400, 401, 403, 404, 415, 500)
}
Limit = Annotated[int, Query(ge=1, le=100)]


def service(c: Any) -> ConversationService:
    found: ConversationService | None = getattr(c, "conversations", None)
    if found is None:
        raise ServiceUnavailable("Conversations are not available in this process.")
    return found


def _user(user: str | None) -> str:
    resolved = end_user_arg({"user": user})
    assert resolved is not None
    return resolved


def _item(row: Conversation) -> ConversationItem:
    return ConversationItem(
        id=row.id,
        name=row.name,
        inputs=row.inputs or {},
        status=row.status,
        introduction="",
        created_at=epoch(row.created_at) or 0,
        updated_at=epoch(row.updated_at) or 0,
    )


def _body(name: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
        }
    }


@router.get(
    "/conversations", operation_id="list_conversations", response_model=ConversationPage, responses=ERRORS
)
async def list_conversations(
    auth: AppAuthDep,
    c: ContainerDep,
    user: str | None = None,
    last_id: str | None = None,
    limit: Limit = 20,
    sort_by: str = "-updated_at",
) -> ConversationPage:
    page = await service(c).list_conversations(
        auth, _user(user), last_id=last_id, limit=limit, sort_by=sort_by
    )
    return ConversationPage(limit=limit, has_more=page.has_more, data=[_item(r) for r in page.items])


@router.get("/messages", operation_id="list_messages", response_model=MessagePage, responses=ERRORS)
async def list_messages(
    auth: AppAuthDep,
    c: ContainerDep,
    conversation_id: str,
    user: str | None = None,
    first_id: str | None = None,
    limit: Limit = 20,
) -> MessagePage:
    page = await service(c).messages(auth, _user(user), conversation_id, first_id=first_id, limit=limit)
    data = [
        MessageItem(
            id=v.message.id,
            conversation_id=v.message.conversation_id,
            inputs=v.message.inputs or {},
            query=v.message.query,
            answer=v.message.answer,
            feedback=MessageFeedbackBody(rating=v.feedback.rating) if v.feedback else None,
            created_at=epoch(v.message.created_at) or 0,
            status=v.message.status,
            error=v.message.error,
        )
        for v in page.items
    ]
    return MessagePage(limit=limit, has_more=page.has_more, data=data)


@router.post(
    "/conversations/{conversation_id}/name",
    operation_id="rename_conversation",
    response_model=ConversationItem,
    responses=ERRORS,
    openapi_extra=_body("RenameConversationRequest"),
)
async def rename_conversation(
    conversation_id: str, request: Request, auth: AppAuthDep, c: ContainerDep
) -> ConversationItem:
    body = await json_object(request)
    user = _user(body.get("user"))
    req = validate(RenameConversationRequest, body)
    row = await service(c).rename(auth, user, conversation_id, name=req.name, auto_generate=req.auto_generate)
    return _item(row)


@router.delete(
    "/conversations/{conversation_id}",
    operation_id="delete_conversation",
    status_code=204,
    responses=ERRORS,
    openapi_extra=_body("TaskStopRequest"),
)
async def delete_conversation(
    conversation_id: str, request: Request, auth: AppAuthDep, c: ContainerDep
) -> Response:
    body = await json_object(request)
    user = _user(body.get("user"))
    validate(TaskStopRequest, body)
    await service(c).delete(auth, user, conversation_id)
    return Response(status_code=204)


@router.get(
    "/conversations/{conversation_id}/variables",
    operation_id="list_conversation_variables",
    response_model=ConversationVariablePage,
    responses=ERRORS,
)
async def list_conversation_variables(
    conversation_id: str,
    auth: AppAuthDep,
    c: ContainerDep,
    user: str | None = None,
    last_id: str | None = None,
    limit: Limit = 20,
) -> ConversationVariablePage:
    page = await service(c).variables(auth, _user(user), conversation_id, last_id=last_id, limit=limit)
    data = [
        ConversationVariableItem(
            id=r.id,
            name=r.name,
            value_type=r.value_type,
            value=r.value,
            description=r.description,
            created_at=epoch(r.created_at) or 0,
            updated_at=epoch(r.updated_at) or 0,
        )
        for r in page.items
    ]
    return ConversationVariablePage(limit=limit, has_more=page.has_more, data=data)


@router.post(
    "/messages/{message_id}/feedbacks",
    operation_id="create_message_feedback",
    response_model=SimpleResultResponse,
    responses=ERRORS,
    openapi_extra=_body("FeedbackRequest"),
)
async def create_message_feedback(
    message_id: str, request: Request, auth: AppAuthDep, c: ContainerDep
) -> SimpleResultResponse:
    body = await json_object(request)
    user = _user(body.get("user"))
    req = validate(FeedbackRequest, body)
    await service(c).feedback(auth, user, message_id, rating=req.rating, content=req.content)
    return SimpleResultResponse()
