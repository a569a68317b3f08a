"""Repositories of the Service API's files and chat: uploads, conversations, messages, conversation
variables and feedback. No commits: callers own the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from sluice.adapters.sql.tables import (
    Conversation,
    ConversationVariable,
    EndUser,
    Message,
    MessageFeedback,
    UploadFile,
    WorkflowNodeExecution,
    WorkflowRun,
)

# -- uploads ------------------------------------------------------------------------------------------


async def get_upload(session: AsyncSession, file_id: str) -> UploadFile | None:
    return await session.get(UploadFile, file_id)


async def get_end_user(session: AsyncSession, user_id: str) -> EndUser | None:
    return await session.get(EndUser, user_id)


async def end_user_id(session: AsyncSession, app_id: str, kind: str, session_id: str) -> str | None:
    stmt = select(EndUser.id).where(
        EndUser.app_id == app_id, EndUser.type == kind, EndUser.session_id == session_id
    )
    return (await session.exec(stmt)).first()


async def mark_used(session: AsyncSession, file_ids: Sequence[str], by: str, at: datetime) -> None:
    if file_ids:
        stmt = update(UploadFile).where(col(UploadFile.id).in_(list(file_ids)))
        await session.exec(stmt.values(used=True, used_by=by, used_at=at))


# -- conversations ------------------------------------------------------------------------------------


async def get_conversation(session: AsyncSession, conversation_id: str) -> Conversation | None:
    return await session.get(Conversation, conversation_id)


async def lock_conversation(session: AsyncSession, conversation_id: str) -> Conversation | None:
    stmt = select(Conversation).where(Conversation.id == conversation_id).with_for_update()
    return (await session.exec(stmt)).first()


async def list_conversations(
    session: AsyncSession,
    app_id: str,
    end_user_id: str,
    *,
    limit: int,
    sort_by: str,
    last: Conversation | None,
) -> list[Conversation]:
    """Newest first by ``updated_at`` (``-updated_at``) or the other orders Dify offers; ``last``
    is the last row of the previous page."""
    field = col(Conversation.updated_at) if "updated_at" in sort_by else col(Conversation.created_at)
    descending = sort_by.startswith("-")
    stmt = select(Conversation).where(
        Conversation.app_id == app_id,
        Conversation.from_end_user_id == end_user_id,
        col(Conversation.is_deleted).is_(False),
    )
    if last is not None:
        pivot = last.updated_at if "updated_at" in sort_by else last.created_at
        stmt = stmt.where(field < pivot if descending else field > pivot)
    order = (field.desc(), col(Conversation.id).desc()) if descending else (field, col(Conversation.id))
    return list((await session.exec(stmt.order_by(*order).limit(limit + 1))).all())


async def touch_conversation(session: AsyncSession, conversation_id: str, **values: Any) -> None:
    await session.exec(update(Conversation).where(col(Conversation.id) == conversation_id).values(**values))


# -- messages -----------------------------------------------------------------------------------------


async def get_message(session: AsyncSession, message_id: str) -> Message | None:
    return await session.get(Message, message_id)


async def message_by_run(session: AsyncSession, run_id: str) -> Message | None:
    stmt = select(Message).where(Message.workflow_run_id == run_id)
    return (await session.exec(stmt)).first()


async def count_messages(session: AsyncSession, conversation_id: str) -> int:
    stmt = select(func.count()).select_from(Message).where(Message.conversation_id == conversation_id)
    return int((await session.exec(stmt)).one())


async def unsettled(session: AsyncSession, conversation_id: str) -> list[tuple[Message, WorkflowRun]]:
    """Messages whose outcome is not copied yet, with their runs, oldest first."""
    stmt = (
        select(Message, WorkflowRun)
        .join(WorkflowRun, col(WorkflowRun.id) == col(Message.workflow_run_id))
        .where(Message.conversation_id == conversation_id, col(Message.settled).is_(False))
        .order_by(col(Message.created_at), col(Message.id))
    )
    return [(m, r) for m, r in (await session.exec(stmt)).all()]


async def page_messages(
    session: AsyncSession, conversation_id: str, *, limit: int, before: Message | None
) -> list[Message]:
    """The ``limit + 1`` messages before ``before`` (newest first)."""
    stmt = select(Message).where(Message.conversation_id == conversation_id)
    if before is not None:
        stmt = stmt.where(col(Message.created_at) < before.created_at)
    stmt = stmt.order_by(col(Message.created_at).desc(), col(Message.id).desc()).limit(limit + 1)
    return list((await session.exec(stmt)).all())


async def first_message(session: AsyncSession, conversation_id: str) -> Message | None:
    stmt = select(Message).where(Message.conversation_id == conversation_id)
    return (await session.exec(stmt.order_by(col(Message.created_at), col(Message.id)).limit(1))).first()


async def feedbacks(session: AsyncSession, message_ids: Sequence[str]) -> dict[str, MessageFeedback]:
    if not message_ids:
        return {}
    stmt = select(MessageFeedback).where(col(MessageFeedback.message_id).in_(list(message_ids)))
    return {f.message_id: f for f in (await session.exec(stmt)).all()}


async def feedback_of(session: AsyncSession, message_id: str, end_user_id: str) -> MessageFeedback | None:
    stmt = select(MessageFeedback).where(
        MessageFeedback.message_id == message_id, MessageFeedback.from_end_user_id == end_user_id
    )
    return (await session.exec(stmt)).first()


async def updated_variables(session: AsyncSession, run_id: str) -> list[dict[str, Any]]:
    """Conversation-variable writes of a run's succeeded assigner executions, in execution order."""
    stmt = (
        select(WorkflowNodeExecution)
        .where(
            WorkflowNodeExecution.workflow_run_id == run_id,
            col(WorkflowNodeExecution.status).in_(("succeeded", "exception")),
        )
        .order_by(col(WorkflowNodeExecution.index))
    )
    writes: list[dict[str, Any]] = []
    for row in (await session.exec(stmt)).all():
        for item in (row.process_data or {}).get("__updated_variables") or []:
            selector = item.get("selector") if isinstance(item, dict) else None
            if isinstance(selector, list) and len(selector) == 2 and selector[0] == "conversation":
                writes.append(item)
    return writes


# -- conversation variables ----------------------------------------------------------------------------


async def variables(session: AsyncSession, conversation_id: str) -> list[ConversationVariable]:
    stmt = (
        select(ConversationVariable)
        .where(ConversationVariable.conversation_id == conversation_id)
        .order_by(col(ConversationVariable.created_at), col(ConversationVariable.name))
    )
    return list((await session.exec(stmt)).all())
