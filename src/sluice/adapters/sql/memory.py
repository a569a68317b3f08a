"""Conversation memory for LLM-family nodes: the earlier turns of an advanced-chat conversation."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from sluice.adapters.sql.tables import Message, WorkflowRun
from sluice.engine.llm import ChatMessage


class SqlConversationMemory:
    def __init__(self, db: async_sessionmaker[AsyncSession]) -> None:
        self._db = db

    async def history(self, conversation_id: str, limit: int) -> list[ChatMessage]:
        """The last ``limit`` messages (user query, assistant answer) of finished turns, oldest
        first. A turn whose run is still going (the current one) is not history yet."""
        if limit <= 0:
            return []
        stmt = (
            select(Message, WorkflowRun)
            .join(WorkflowRun, col(WorkflowRun.id) == col(Message.workflow_run_id))
            .where(col(Message.conversation_id) == conversation_id)
            .where(col(WorkflowRun.status).in_(("succeeded", "partial-succeeded")))
            .order_by(col(Message.created_at).desc())
            .limit(limit // 2 + 1)
        )
        async with self._db() as session:
            rows = list((await session.exec(stmt)).all())
        turns: list[ChatMessage] = []
        for message, run in reversed(rows):
            answer = message.answer if message.settled else str((run.outputs or {}).get("answer") or "")
            turns += [ChatMessage("user", message.query), ChatMessage("assistant", answer)]
        return turns[-limit:]
