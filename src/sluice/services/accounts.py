"""Accounts, memberships and console sessions (openapi-user.md §7, §9).

Passwords are argon2id hashes. A console session is a random cookie value stored as its SHA-256,
with a CSRF token and the workspace it works in. Failed logins are limited per client IP and
lower-cased email (10 per 15 minutes); the check runs before the password is verified.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from sluice.adapters.sql import repos, user_repos
from sluice.adapters.sql.tables import Account, ConsoleSession, Tenant, TenantAccountJoin
from sluice.adapters.sql.user_repos import Membership
from sluice.services.ratelimit import RateLimited, RateLimiter
from sluice.services.user_errors import UserApiError
from sluice.settings import UserApiSettings

audit = logging.getLogger("sluice.audit")
ROLES = ("owner", "admin", "editor", "normal", "dataset_operator")
LOGIN_FAILURES = ("console_login_failed", 10, 15 * 60)
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class WallClock(Protocol):
    """Aware UTC ``now()``; injected so tests can move time (token TTLs, device-code expiry)."""

    def now(self) -> datetime: ...


def now_pair(clock: WallClock) -> tuple[float, datetime]:
    """Epoch seconds (rate windows) and naive UTC (stored timestamps) of one instant."""
    now = clock.now()
    return now.timestamp(), now.astimezone(UTC).replace(tzinfo=None)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True, slots=True)
class ConsoleContext:
    """A live console session and its active account."""

    session: ConsoleSession
    account: Account


@dataclass(frozen=True, slots=True)
class NewSession:
    cookie: str
    context: ConsoleContext


class AccountService:
    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        clock: WallClock,
        limiter: RateLimiter,
        settings: UserApiSettings,
    ) -> None:
        self._db = db
        self._clock = clock
        self._limiter = limiter
        self._settings = settings

    def _now(self) -> tuple[float, datetime]:
        return now_pair(self._clock)

    # -- management ---------------------------------------------------------------------------------

    async def create_account(
        self, email: str, password: str, *, name: str | None, workspace: str, role: str | None = None
    ) -> tuple[Account, Tenant]:
        """Create an account in a workspace (created when missing: then its owner)."""
        email = email.strip().lower()
        if "@" not in email or len(email) > 255:
            raise UserApiError(400, "invalid_param", "A valid email is required.")
        if len(password) < 8:
            raise UserApiError(400, "invalid_param", "The password needs at least 8 characters.")
        if role is not None and role not in ROLES:
            raise UserApiError(400, "invalid_param", f"role must be one of {', '.join(ROLES)}")
        async with self._db() as session, session.begin():
            if await user_repos.account_by_email(session, email) is not None:
                raise UserApiError(409, "conflict", f"An account with email {email} exists.")
            tenant = await repos.tenant_by_name(session, workspace)
            created = tenant is None
            if tenant is None:
                tenant = Tenant(name=workspace)
                session.add(tenant)
            account = Account(
                email=email, name=name or email.split("@", 1)[0], password_hash=hash_password(password)
            )
            session.add(account)
            await session.flush()
            join_role = role or ("owner" if created else "normal")
            session.add(
                TenantAccountJoin(tenant_id=tenant.id, account_id=account.id, role=join_role, current=True)
            )
        return account, tenant

    # -- workspaces of an account -------------------------------------------------------------------

    async def memberships(self, account_id: str) -> list[Membership]:
        async with self._db() as session:
            return await user_repos.memberships(session, account_id)

    async def membership(self, account_id: str, tenant_id: str) -> Membership | None:
        async with self._db() as session:
            return await user_repos.membership(session, account_id, tenant_id)

    @staticmethod
    def default_workspace(rows: list[Membership], preferred: str | None = None) -> str | None:
        """``preferred`` if still a membership, else the one marked current, else the first."""
        if preferred and any(t.id == preferred for _, t in rows):
            return preferred
        for join, tenant in rows:
            if join.current:
                return tenant.id
        return rows[0][1].id if rows else None

    # -- console sessions ---------------------------------------------------------------------------

    async def login(self, email: str, password: str, client_ip: str) -> NewSession:
        """Verify credentials and open a session; 401 for bad credentials or an inactive account."""
        epoch, now = self._now()
        name, limit, window = LOGIN_FAILURES
        key = f"{client_ip}|{email.strip().lower()}"
        decision = await self._limiter.peek(name, key, limit, window, epoch)
        if not decision.allowed:
            raise RateLimited(decision.retry_after)
        async with self._db() as session:
            account = await user_repos.account_by_email(session, email.strip())
        ok = verify_password(account.password_hash if account else None, password)
        if account is None or not ok or account.status != "active":
            await self._limiter.hit(name, key, limit, window, epoch)
            audit.info("console.login_failed", extra={"email": email.strip().lower(), "ip": client_ip})
            raise UserApiError(401, "unauthorized", "Invalid email or password.")
        cookie = secrets.token_urlsafe(32)
        async with self._db() as session, session.begin():
            rows = await user_repos.memberships(session, account.id)
            row = ConsoleSession(
                session_hash=sha256_hex(cookie),
                account_id=account.id,
                csrf_token=secrets.token_urlsafe(32),
                current_tenant_id=self.default_workspace(rows),
                created_at=now,
                expires_at=now + timedelta(hours=self._settings.console_session_ttl_hours),
                last_seen_at=now,
            )
            session.add(row)
            stored = await user_repos.get_account(session, account.id)
            assert stored is not None
            stored.last_login_at = now
        audit.info("console.login", extra={"account_id": account.id})
        return NewSession(cookie, ConsoleContext(row, account))

    async def session(self, cookie: str | None) -> ConsoleContext | None:
        """The live session named by the cookie, if its account is still active."""
        if not cookie:
            return None
        _, now = self._now()
        async with self._db() as session:
            row = await user_repos.console_session_by_hash(session, sha256_hex(cookie))
            if row is None or row.expires_at <= now:
                return None
            account = await user_repos.get_account(session, row.account_id)
        if account is None or account.status != "active":
            return None
        return ConsoleContext(row, account)

    async def logout(self, context: ConsoleContext) -> None:
        async with self._db() as session, session.begin():
            await user_repos.delete_console_session(session, context.session.id)

    @staticmethod
    def csrf_ok(context: ConsoleContext, presented: str | None) -> bool:
        return bool(presented) and same(context.session.csrf_token, presented or "")

    async def purge(self) -> None:
        _, now = self._now()
        async with self._db() as session, session.begin():
            await user_repos.purge_console_sessions(session, now)
