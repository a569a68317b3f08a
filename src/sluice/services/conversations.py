"""Conversations of an advanced-chat app as Dify's chat clients read them: list, messages, rename,
delete, conversation variables and message feedback (docs/spec-additions.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from sluice.adapters.sql import chat_repos
from sluice.adapters.sql.tables import Conversation, ConversationVariable, Message, MessageFeedback, utcnow
from sluice.services.apps import AppAuth
from sluice.services.chat import NAME_LENGTH, ChatService, NotChatApp, conversation_not_found
from sluice.services.errors import InvalidParam, NotFound
from sluice.services.runs import is_uuid

SORTS = ("created_at", "-created_at", "updated_at", "-updated_at")


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    has_more: bool


@dataclass(frozen=True, slots=True)
class MessageView:
    message: Message
    feedback: MessageFeedback | None


class ConversationService:
    def __init__(self, db: async_sessionmaker[AsyncSession], chat: ChatService) -> None:
        self._db = db
        self._chat = chat

    @staticmethod
    def _check_mode(auth: AppAuth) -> None:
        if auth.app.mode != "advanced-chat":
            raise NotChatApp()

    async def _owner(self, session: AsyncSession, auth: AppAuth, user: str) -> str | None:
        return await chat_repos.end_user_id(session, auth.app.id, "service_api", user)

    async def _conversation(
        self, session: AsyncSession, auth: AppAuth, user: str, conversation_id: str
    ) -> Conversation:
        if not is_uuid(conversation_id):
            raise conversation_not_found()
        conversation = await chat_repos.get_conversation(session, conversation_id)
        owner = await self._owner(session, auth, user)
        if (
            conversation is None
            or conversation.app_id != auth.app.id
            or conversation.is_deleted
            or owner is None
            or conversation.from_end_user_id != owner
        ):
            raise conversation_not_found()
        return conversation

    async def list_conversations(
        self, auth: AppAuth, user: str, *, last_id: str | None, limit: int, sort_by: str
    ) -> Page[Conversation]:
        self._check_mode(auth)
        if sort_by not in SORTS:
            raise InvalidParam(f"sort_by: Input should be {', '.join(repr(s) for s in SORTS)}")
        async with self._db() as session:
            owner = await self._owner(session, auth, user)
            if owner is None:
                return Page([], False)
            last = None
            if last_id:
                last = await chat_repos.get_conversation(session, last_id) if is_uuid(last_id) else None
                if last is None or last.app_id != auth.app.id or last.from_end_user_id != owner:
                    raise NotFound("Last Conversation Not Exists.")
            rows = await chat_repos.list_conversations(
                session, auth.app.id, owner, limit=limit, sort_by=sort_by, last=last
            )
        return Page(rows[:limit], len(rows) > limit)

    async def messages(
        self, auth: AppAuth, user: str, conversation_id: str, *, first_id: str | None, limit: int
    ) -> Page[MessageView]:
        """The ``limit`` messages before ``first_id`` (or the newest), oldest first (Dify's order)."""
        self._check_mode(auth)
        async with self._db() as session:
            await self._conversation(session, auth, user, conversation_id)
        await self._chat.settle(conversation_id)
        async with self._db() as session:
            first = None
            if first_id:
                first = await chat_repos.get_message(session, first_id) if is_uuid(first_id) else None
                if first is None or first.conversation_id != conversation_id:
                    raise NotFound("First Message Not Exists.")
            rows = await chat_repos.page_messages(session, conversation_id, limit=limit, before=first)
            page = rows[:limit]
            feedback = await chat_repos.feedbacks(session, [m.id for m in page])
        views = [MessageView(m, feedback.get(m.id)) for m in reversed(page)]
        return Page(views, len(rows) > limit)

    async def rename(
        self, auth: AppAuth, user: str, conversation_id: str, *, name: str | None, auto_generate: bool
    ) -> Conversation:
        self._check_mode(auth)
        async with self._db() as session, session.begin():
            conversation = await self._conversation(session, auth, user, conversation_id)
            if auto_generate:
                first = await chat_repos.first_message(session, conversation_id)
                new_name = first.query[:NAME_LENGTH] if first else conversation.name
            else:
                new_name = (name or "").strip()
                if not new_name:
                    raise InvalidParam("name: Conversation name is required when auto_generate is false.")
            conversation.name = new_name[:255]
            conversation.updated_at = utcnow()
            session.add(conversation)
        return conversation

    async def delete(self, auth: AppAuth, user: str, conversation_id: str) -> None:
        self._check_mode(auth)
        async with self._db() as session, session.begin():
            conversation = await self._conversation(session, auth, user, conversation_id)
            await chat_repos.touch_conversation(
                session, conversation.id, is_deleted=True, updated_at=utcnow()
            )

    async def variables(
        self, auth: AppAuth, user: str, conversation_id: str, *, last_id: str | None, limit: int
    ) -> Page[ConversationVariable]:
        self._check_mode(auth)
        async with self._db() as session:
            await self._conversation(session, auth, user, conversation_id)
        await self._chat.settle(conversation_id)
        async with self._db() as session:
            rows = await chat_repos.variables(session, conversation_id)
        if last_id:
            ids = [r.id for r in rows]
            if last_id not in ids:
                raise NotFound("Conversation Variable Not Exists.")
            rows = rows[ids.index(last_id) + 1 :]
        return Page(rows[:limit], len(rows) > limit)

    async def feedback(
        self, auth: AppAuth, user: str, message_id: str, *, rating: str | None, content: str | None
    ) -> None:
        """Like, dislike, or (``rating`` null) withdraw this end user's feedback on a message."""
        async with self._db() as session, session.begin():
            message = await chat_repos.get_message(session, message_id) if is_uuid(message_id) else None
            owner = await self._owner(session, auth, user)
            if message is None or message.app_id != auth.app.id or owner is None:
                raise NotFound("Message Not Exists.")
            if message.from_end_user_id != owner:
                raise NotFound("Message Not Exists.")
            existing = await chat_repos.feedback_of(session, message_id, owner)
            if rating is None:
                if existing is None:
                    raise InvalidParam("rating: Feedback does not exist.")
                await session.delete(existing)
                return
            row = existing or MessageFeedback(
                app_id=message.app_id,
                conversation_id=message.conversation_id,
                message_id=message.id,
                rating=rating,
                from_end_user_id=owner,
            )
            row.rating, row.content, row.updated_at = rating, content, utcnow()
            session.add(row)
