"""Advanced-chat turns (service-api §5.8): conversations, messages, conversation-variable write-back.

A turn is a run whose ``sys`` variables carry the query, the conversation id and the dialogue
count, and whose pool starts from the conversation's variable values. Its conversation (when new)
and message rows are inserted in the run's own transaction (``ChatTurn.on_insert``).

Write-back is lazy and idempotent: a message is *settled* once its run has ended, by copying the
run's ``answer`` and error and applying the conversation-variable writes its assigner nodes
recorded (``process_data.__updated_variables``) to ``conversation_variables``. Settling happens
before the next turn of the conversation reads the variables and whenever messages or variables
are read, guarded by a conditional update so that no write is applied twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from sluice.adapters.sql import chat_repos, repos
from sluice.adapters.sql.tables import (
    Conversation,
    ConversationVariable,
    EndUser,
    Message,
    WorkflowRun,
    utcnow,
)
from sluice.engine.checks import parsed_value
from sluice.runtime.graphs import GraphCache
from sluice.services.apps import AppAuth
from sluice.services.errors import AppModeMismatch, BadRequest, DomainError, InvalidParam, NotFound
from sluice.services.runs import ChatTurn, RunService, StartedRun, is_uuid

TERMINAL = frozenset({"succeeded", "partial-succeeded", "failed", "stopped"})
NAME_LENGTH = 30


class NotChatApp(AppModeMismatch):
    code = "not_chat_app"


class ConversationCompleted(DomainError):
    code = "conversation_completed"
    message = "The conversation has ended. Please start a new conversation."


def conversation_not_found() -> NotFound:
    return NotFound("Conversation Not Exists.")


@dataclass(frozen=True, slots=True)
class StartedTurn:
    run: StartedRun
    message_id: str
    conversation_id: str
    created_at: datetime


class ChatService:
    def __init__(self, db: async_sessionmaker[AsyncSession], runs: RunService, graphs: GraphCache) -> None:
        self._db = db
        self._runs = runs
        self._graphs = graphs

    async def send(
        self,
        auth: AppAuth,
        user: str,
        *,
        query: str,
        inputs: dict[str, Any],
        conversation_id: str | None,
        files: list[Any] | None,
        auto_generate_name: bool,
        workflow_id: str | None,
    ) -> StartedTurn:
        """Start one turn; the run's own checks (inputs, files, concurrency) apply."""
        if auth.app.mode != "advanced-chat":
            raise NotChatApp()
        conversation_id = (conversation_id or "").strip() or None
        if conversation_id is not None and not is_uuid(conversation_id):
            raise InvalidParam("conversation_id must be a valid UUID")
        if workflow_id:
            await self._check_workflow(auth, workflow_id)
        message_id = str(uuid.uuid4())
        if conversation_id is None:
            new_id = str(uuid.uuid4())
            name = query[:NAME_LENGTH] if auto_generate_name else ""
            turn = ChatTurn(query, new_id, 1, on_insert=self._inserter(message_id, query, new=name))
            started = await self._runs.start(auth, user, inputs, files=files, chat=turn)
            return StartedTurn(started, message_id, new_id, started.facts.created_at)
        async with self._db() as session:
            conversation = await self._owned(session, auth, user, conversation_id)
            if conversation.status != "normal":
                raise ConversationCompleted()
        await self.settle(conversation_id)
        async with self._db() as session:
            values = {v.name: v.value for v in await chat_repos.variables(session, conversation_id)}
            count = await chat_repos.count_messages(session, conversation_id)
        turn = ChatTurn(
            query,
            conversation_id,
            count + 1,
            conversation=values,
            stored_inputs=dict(conversation.inputs or {}),
            on_insert=self._inserter(message_id, query, new=None),
        )
        started = await self._runs.start(auth, user, inputs, files=files, chat=turn)
        return StartedTurn(started, message_id, conversation_id, started.facts.created_at)

    async def _check_workflow(self, auth: AppAuth, workflow_id: str) -> None:
        """Dify's ``workflow_id`` rules; only the published version can run here."""
        if not is_uuid(workflow_id):
            raise BadRequest(f"Invalid workflow_id format: '{workflow_id}'. ")
        async with self._db() as session:
            workflow = await repos.get_workflow(session, workflow_id)
        if workflow is None or workflow.app_id != auth.app.id:
            raise NotFound(f"Workflow not found with id: {workflow_id}")
        if workflow.version == "draft":
            raise BadRequest("Cannot use draft workflow version. Workflow ID: " + workflow_id)
        if workflow.id != auth.app.workflow_id:
            raise BadRequest(f"Workflow version {workflow.version} is not the published one")

    def _inserter(self, message_id: str, query: str, *, new: str | None) -> Any:
        async def insert(
            session: AsyncSession, run: WorkflowRun, end_user: EndUser, prepared: dict[str, Any]
        ) -> None:
            conversation_id = str(run.inputs["sys.conversation_id"])
            now = utcnow()
            if new is not None:
                session.add(
                    Conversation(
                        id=conversation_id,
                        tenant_id=run.tenant_id,
                        app_id=run.app_id,
                        from_end_user_id=end_user.id,
                        name=new,
                        inputs=prepared,
                        created_at=now,
                        updated_at=now,
                    )
                )
                await session.flush()
                workflow = await repos.get_workflow(session, run.workflow_id)
                graph = self._graphs.get(workflow) if workflow is not None else None
                for var in graph.conversation_variables if graph is not None else ():
                    session.add(
                        ConversationVariable(
                            conversation_id=conversation_id,
                            app_id=run.app_id,
                            name=str(var.get("name")),
                            value_type=str(var.get("value_type") or "string"),
                            value=parsed_value(var),
                            description=str(var.get("description") or ""),
                        )
                    )
            else:
                await chat_repos.touch_conversation(session, conversation_id, updated_at=now)
            session.add(
                Message(
                    id=message_id,
                    conversation_id=conversation_id,
                    app_id=run.app_id,
                    workflow_run_id=run.id,
                    from_end_user_id=end_user.id,
                    inputs=prepared,
                    query=query,
                    created_at=now,
                )
            )
            await session.flush()

        return insert

    async def _owned(
        self, session: AsyncSession, auth: AppAuth, user: str, conversation_id: str
    ) -> Conversation:
        conversation = await chat_repos.get_conversation(session, conversation_id)
        owner = await chat_repos.end_user_id(session, auth.app.id, "service_api", user)
        if (
            conversation is None
            or conversation.app_id != auth.app.id
            or conversation.is_deleted
            or owner is None
            or conversation.from_end_user_id != owner
        ):
            raise conversation_not_found()
        return conversation

    async def stop(self, auth: AppAuth, task_id: str, user: str) -> None:
        if auth.app.mode != "advanced-chat":
            raise NotChatApp()
        await self._runs.stop(auth, task_id, user)

    # -- write-back ------------------------------------------------------------------------------------

    async def settle(self, conversation_id: str) -> None:
        """Copy finished runs' answers and conversation-variable writes (see the module doc)."""
        async with self._db() as session:
            pending = await chat_repos.unsettled(session, conversation_id)
        for message, run in pending:
            if run.status not in TERMINAL:
                break  # later turns wait: writes apply in turn order
            async with self._db() as session, session.begin():
                won = await session.exec(
                    update(Message)
                    .where(col(Message.id) == message.id, col(Message.settled).is_(False))
                    .values(
                        settled=True,
                        answer=str((run.outputs or {}).get("answer") or ""),
                        status="error" if run.status == "failed" else "normal",
                        error=run.error if run.status == "failed" else None,
                    )
                )
                if not won.rowcount:
                    continue
                writes = await chat_repos.updated_variables(session, run.id)
                if writes:
                    await self._apply(session, conversation_id, run.app_id, writes)

    async def _apply(
        self, session: AsyncSession, conversation_id: str, app_id: str, writes: list[dict[str, Any]]
    ) -> None:
        rows = {v.name: v for v in await chat_repos.variables(session, conversation_id)}
        now = utcnow()
        for item in writes:
            name = str(item.get("name") or item["selector"][1])
            row = rows.get(name)
            if row is None:
                row = ConversationVariable(
                    conversation_id=conversation_id,
                    app_id=app_id,
                    name=name,
                    value_type=str(item.get("value_type") or "string"),
                )
                rows[name] = row
            row.value = item.get("new_value")
            row.updated_at = now
            session.add(row)
