"""Repositories of the user API: accounts, memberships, console sessions, bearer tokens, device
flow, and the app queries the user API and console need. No commits: callers own the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import case, delete, func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from sluice.adapters.sql.tables import (
    Account,
    App,
    ConsoleSession,
    DeviceAuthorization,
    OAuthAccessToken,
    Tag,
    TagBinding,
    Tenant,
    TenantAccountJoin,
    WorkflowRun,
)

Membership = tuple[TenantAccountJoin, Tenant]


def escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# -- accounts and memberships -----------------------------------------------------------------------


async def account_by_email(session: AsyncSession, email: str) -> Account | None:
    return (await session.exec(select(Account).where(Account.email == email.lower()))).first()


async def get_account(session: AsyncSession, account_id: str) -> Account | None:
    return await session.get(Account, account_id)


async def memberships(session: AsyncSession, account_id: str) -> list[Membership]:
    """Every membership of the account with its workspace, by workspace ``created_at``."""
    stmt = (
        select(TenantAccountJoin, Tenant)
        .join(Tenant, col(Tenant.id) == col(TenantAccountJoin.tenant_id))
        .where(TenantAccountJoin.account_id == account_id)
        .order_by(col(Tenant.created_at), col(Tenant.id))
    )
    return [(join, tenant) for join, tenant in (await session.exec(stmt)).all()]


async def membership(session: AsyncSession, account_id: str, tenant_id: str) -> Membership | None:
    stmt = (
        select(TenantAccountJoin, Tenant)
        .join(Tenant, col(Tenant.id) == col(TenantAccountJoin.tenant_id))
        .where(TenantAccountJoin.account_id == account_id, TenantAccountJoin.tenant_id == tenant_id)
    )
    row = (await session.exec(stmt)).first()
    return (row[0], row[1]) if row is not None else None


async def clear_current(session: AsyncSession, account_id: str) -> None:
    await session.exec(
        update(TenantAccountJoin).where(col(TenantAccountJoin.account_id) == account_id).values(current=False)
    )


async def account_names(session: AsyncSession, ids: Sequence[str]) -> dict[str, str]:
    if not ids:
        return {}
    stmt = select(Account.id, Account.name).where(col(Account.id).in_(set(ids)))
    return {str(i): str(n) for i, n in (await session.exec(stmt)).all()}


# -- console sessions -------------------------------------------------------------------------------


async def console_session_by_hash(session: AsyncSession, session_hash: str) -> ConsoleSession | None:
    stmt = select(ConsoleSession).where(ConsoleSession.session_hash == session_hash)
    return (await session.exec(stmt)).first()


async def delete_console_session(session: AsyncSession, session_id: str) -> None:
    await session.exec(delete(ConsoleSession).where(col(ConsoleSession.id) == session_id))


async def purge_console_sessions(session: AsyncSession, now: datetime) -> None:
    await session.exec(delete(ConsoleSession).where(col(ConsoleSession.expires_at) <= now))


# -- bearer tokens ----------------------------------------------------------------------------------


async def token_by_hash(session: AsyncSession, token_hash: str) -> OAuthAccessToken | None:
    stmt = select(OAuthAccessToken).where(OAuthAccessToken.token_hash == token_hash)
    return (await session.exec(stmt)).first()


async def get_token(session: AsyncSession, token_id: str) -> OAuthAccessToken | None:
    return await session.get(OAuthAccessToken, token_id)


async def revoke_token(session: AsyncSession, token_id: str, now: datetime) -> bool:
    """Idempotent: only a live row changes; revoked rows lose their hash."""
    stmt = (
        update(OAuthAccessToken)
        .where(col(OAuthAccessToken.id) == token_id, col(OAuthAccessToken.revoked_at).is_(None))
        .values(revoked_at=now, token_hash=None)
    )
    return bool((await session.exec(stmt)).rowcount)


async def revoke_live_subject(
    session: AsyncSession, email: str, issuer: str, client_id: str, device_label: str, now: datetime
) -> None:
    """Rotation: the one live token of this (subject, client, device label) ends now."""
    stmt = (
        update(OAuthAccessToken)
        .where(
            col(OAuthAccessToken.subject_email) == email,
            col(OAuthAccessToken.subject_issuer) == issuer,
            col(OAuthAccessToken.client_id) == client_id,
            col(OAuthAccessToken.device_label) == device_label,
            col(OAuthAccessToken.revoked_at).is_(None),
        )
        .values(revoked_at=now, token_hash=None)
    )
    await session.exec(stmt)


async def live_tokens(
    session: AsyncSession, account_id: str, now: datetime, page: int, limit: int
) -> tuple[list[OAuthAccessToken], int]:
    where = (
        col(OAuthAccessToken.account_id) == account_id,
        col(OAuthAccessToken.revoked_at).is_(None),
        col(OAuthAccessToken.expires_at) > now,
    )
    total = int((await session.exec(select(func.count()).select_from(OAuthAccessToken).where(*where))).one())
    stmt = (
        select(OAuthAccessToken)
        .where(*where)
        .order_by(col(OAuthAccessToken.created_at).desc(), col(OAuthAccessToken.id).desc())
        .offset((page - 1) * limit)
        .limit(limit)
    )
    return list((await session.exec(stmt)).all()), total


async def purge_tokens(session: AsyncSession, before: datetime) -> int:
    stmt = delete(OAuthAccessToken).where(
        or_(col(OAuthAccessToken.revoked_at) < before, col(OAuthAccessToken.expires_at) < before)
    )
    return int((await session.exec(stmt)).rowcount or 0)


# -- device flow ------------------------------------------------------------------------------------


async def device_by_hash(session: AsyncSession, device_code_hash: str) -> DeviceAuthorization | None:
    stmt = select(DeviceAuthorization).where(DeviceAuthorization.device_code_hash == device_code_hash)
    return (await session.exec(stmt)).first()


async def device_by_user_code(session: AsyncSession, user_code: str) -> DeviceAuthorization | None:
    stmt = select(DeviceAuthorization).where(DeviceAuthorization.user_code == user_code)
    return (await session.exec(stmt)).first()


async def resolve_device(
    session: AsyncSession,
    device_id: str,
    *,
    status: str,
    account_id: str,
    tenant_id: str | None,
    now: datetime,
    min_expiry: datetime,
) -> bool:
    """pending → approved/denied; of concurrent calls exactly one sees ``True``."""
    expires = col(DeviceAuthorization.expires_at)
    stmt = (
        update(DeviceAuthorization)
        .where(
            col(DeviceAuthorization.id) == device_id,
            col(DeviceAuthorization.status) == "pending",
            expires > now,
        )
        .values(
            status=status,
            approved_account_id=account_id,
            approved_tenant_id=tenant_id,
            resolved_at=now,
            expires_at=case((expires < min_expiry, min_expiry), else_=expires),
        )
    )
    return bool((await session.exec(stmt)).rowcount)


async def consume_device(session: AsyncSession, device_id: str, now: datetime) -> bool:
    """The single atomic consume: only the request whose update hit the row continues."""
    stmt = (
        update(DeviceAuthorization)
        .where(
            col(DeviceAuthorization.id) == device_id,
            col(DeviceAuthorization.status).in_(("approved", "denied")),
            col(DeviceAuthorization.consumed_at).is_(None),
            col(DeviceAuthorization.expires_at) > now,
        )
        .values(consumed_at=now)
    )
    return bool((await session.exec(stmt)).rowcount)


async def set_device_token(session: AsyncSession, device_id: str, token_id: str) -> None:
    await session.exec(
        update(DeviceAuthorization).where(col(DeviceAuthorization.id) == device_id).values(token_id=token_id)
    )


async def purge_devices(session: AsyncSession, before: datetime) -> int:
    stmt = delete(DeviceAuthorization).where(col(DeviceAuthorization.expires_at) < before)
    return int((await session.exec(stmt)).rowcount or 0)


# -- apps -------------------------------------------------------------------------------------------


def _visible(tenant_id: str) -> tuple[object, ...]:
    return (col(App.tenant_id) == tenant_id, col(App.status) == "normal", col(App.enable_api).is_(True))


async def visible_apps(
    session: AsyncSession,
    tenant_id: str,
    *,
    mode: str | None,
    name: str | None,
    tag: str | None,
    page: int,
    limit: int,
) -> tuple[list[App], int]:
    """The workspace's API-enabled apps, newest first; filters in the query so ``total`` is exact."""
    where: list[object] = list(_visible(tenant_id))
    if mode:
        where.append(col(App.mode) == mode)
    if name:
        pattern = f"%{escape_like(name[:30].lower())}%"
        where.append(func.lower(col(App.name)).like(pattern, escape="\\"))
    if tag:
        tagged = (
            select(TagBinding.target_id)
            .join(Tag, col(Tag.id) == col(TagBinding.tag_id))
            .where(Tag.tenant_id == tenant_id, Tag.name == tag)
        )
        where.append(col(App.id).in_(tagged))
    count = select(func.count()).select_from(App).where(*where)  # type: ignore[arg-type]
    total = int((await session.exec(count)).one())
    stmt = (
        select(App)
        .where(*where)  # type: ignore[arg-type]
        .order_by(col(App.created_at).desc(), col(App.id))
        .offset((page - 1) * limit)
        .limit(limit)
    )
    return list((await session.exec(stmt)).all()), total


async def visible_apps_named(session: AsyncSession, tenant_id: str, name: str) -> list[App]:
    stmt = select(App).where(*_visible(tenant_id), col(App.name) == name).order_by(col(App.id))  # type: ignore[arg-type]
    return list((await session.exec(stmt)).all())


async def apps_of_tenant(session: AsyncSession, tenant_id: str) -> list[App]:
    stmt = select(App).where(App.tenant_id == tenant_id).order_by(col(App.created_at).desc(), col(App.id))
    return list((await session.exec(stmt)).all())


async def tags_by_app(session: AsyncSession, app_ids: Sequence[str]) -> dict[str, list[str]]:
    if not app_ids:
        return {}
    stmt = (
        select(TagBinding.target_id, Tag.name)
        .join(Tag, col(Tag.id) == col(TagBinding.tag_id))
        .where(col(TagBinding.target_id).in_(set(app_ids)))
        .order_by(col(TagBinding.created_at))
    )
    out: dict[str, list[str]] = {}
    for target, name in (await session.exec(stmt)).all():
        out.setdefault(str(target), []).append(str(name))
    return out


async def set_app_fields(session: AsyncSession, app_id: str, **values: object) -> None:
    await session.exec(update(App).where(col(App.id) == app_id).values(**values))


async def runs_of_app(
    session: AsyncSession, app_id: str, page: int, limit: int
) -> tuple[list[WorkflowRun], int]:
    total_stmt = select(func.count()).select_from(WorkflowRun).where(WorkflowRun.app_id == app_id)
    total = int((await session.exec(total_stmt)).one())
    stmt = (
        select(WorkflowRun)
        .where(WorkflowRun.app_id == app_id)
        .order_by(col(WorkflowRun.created_at).desc(), col(WorkflowRun.id).desc())
        .offset((page - 1) * limit)
        .limit(limit)
    )
    return list((await session.exec(stmt)).all()), total
