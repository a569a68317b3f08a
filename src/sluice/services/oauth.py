"""``dfoa_`` bearer tokens: mint with rotation in place, resolve per request, list and revoke.

Only ``sha256_hex(token)`` is stored; the plaintext exists once, in the successful device poll.
Resolution follows steps 1–5 of openapi-user.md §3 and answers an expired token exactly like an
unknown one (after hard-expiring its row). Scopes derive from the prefix and are never stored.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from sluice.adapters.sql import user_repos
from sluice.adapters.sql.tables import Account, OAuthAccessToken
from sluice.services.accounts import WallClock, now_pair, sha256_hex
from sluice.services.ratelimit import RateLimiter, enforce
from sluice.services.user_errors import not_found, unauthorized
from sluice.settings import UserApiSettings

audit = logging.getLogger("sluice.audit")
ACCOUNT_PREFIX = "dfoa_"
EXTERNAL_PREFIX = "dfoe_"
ACCOUNT_ISSUER = "dify:account"
TOKEN_RE = re.compile(r"^(dfoa|dfoe)_[A-Za-z0-9_-]{43}$")
SCOPES = (
    "full",
    "apps:read",
    "apps:read:permitted-external",
    "apps:run",
    "workspace:read",
    "workspace:write",
)
PER_TOKEN_WINDOW = 60.0


def new_token() -> str:
    return ACCOUNT_PREFIX + secrets.token_urlsafe(32)


def scopes_for(token: str) -> frozenset[str]:
    return frozenset({"full"}) if token.startswith(ACCOUNT_PREFIX) else frozenset()


def has_scope(granted: frozenset[str], required: str) -> bool:
    return "full" in granted or required in granted


@dataclass(frozen=True, slots=True)
class BearerContext:
    """An authenticated user-API request: its token row, account and scopes."""

    token: OAuthAccessToken
    account: Account
    scopes: frozenset[str]


@dataclass(frozen=True, slots=True)
class MintedToken:
    token: str
    row: OAuthAccessToken


async def mint(
    session: AsyncSession, account: Account, client_id: str, device_label: str, now: datetime, ttl_days: int
) -> MintedToken:
    """Rotate in place inside the caller's transaction: revoke the live row of this (subject,
    client, device label), insert the new one; a collision with a concurrent mint retries once."""
    for attempt in (1, 2):
        token = new_token()
        row = OAuthAccessToken(
            subject_email=account.email,
            subject_issuer=ACCOUNT_ISSUER,
            account_id=account.id,
            client_id=client_id,
            device_label=device_label,
            prefix=ACCOUNT_PREFIX,
            token_hash=sha256_hex(token),
            created_at=now,
            expires_at=now + timedelta(days=ttl_days),
        )
        try:
            async with session.begin_nested():
                await user_repos.revoke_live_subject(
                    session, account.email, ACCOUNT_ISSUER, client_id, device_label, now
                )
                session.add(row)
        except IntegrityError:
            if attempt == 2:
                raise
            continue
        return MintedToken(token, row)
    raise AssertionError("unreachable")


def parse_bearer(authorization: str | None) -> str:
    """Step 1: ``Authorization: Bearer <value>`` (scheme case-insensitive, value trimmed)."""
    parts = (authorization or "").strip().split(None, 1)
    if len(parts) != 2 or parts[0].lower() != "bearer" or not parts[1].strip():
        raise unauthorized("bearer required")
    return parts[1].strip()


class TokenService:
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

    async def authenticate(self, authorization: str | None) -> BearerContext:
        """Steps 1–5 of the pipeline; the per-token limit counts before the lookup."""
        token = parse_bearer(authorization)
        if not token.startswith((ACCOUNT_PREFIX, EXTERNAL_PREFIX)):
            raise unauthorized("invalid bearer")
        token_hash = sha256_hex(token)
        epoch, now = now_pair(self._clock)
        await enforce(
            self._limiter, "token", token_hash, self._settings.rate_limit_per_token, PER_TOKEN_WINDOW, epoch
        )
        async with self._db() as session:
            row = await user_repos.token_by_hash(session, token_hash)
        if row is None:
            raise unauthorized("invalid bearer")
        if row.expires_at <= now:
            async with self._db() as session, session.begin():
                await user_repos.revoke_token(session, row.id, now)
            audit.info("oauth.token_expired", extra={"token_id": row.id})
            raise unauthorized("invalid bearer")
        async with self._db() as session:
            account = await user_repos.get_account(session, row.account_id) if row.account_id else None
        if account is None or account.status != "active":
            raise unauthorized("account not found")
        return BearerContext(row, account, scopes_for(token))

    async def sessions(self, ctx: BearerContext, page: int, limit: int) -> tuple[list[OAuthAccessToken], int]:
        _, now = now_pair(self._clock)
        async with self._db() as session:
            return await user_repos.live_tokens(session, ctx.account.id, now, page, limit)

    async def revoke_current(self, ctx: BearerContext) -> None:
        await self._revoke(ctx.token.id)

    async def revoke(self, ctx: BearerContext, session_id: str) -> None:
        """Only the caller's own rows; a revoked one still answers 200 (idempotent)."""
        async with self._db() as session:
            row = await user_repos.get_token(session, session_id)
        if row is None or row.account_id != ctx.account.id:
            raise not_found("session not found")
        await self._revoke(row.id)

    async def _revoke(self, token_id: str) -> None:
        _, now = now_pair(self._clock)
        async with self._db() as session, session.begin():
            changed = await user_repos.revoke_token(session, token_id, now)
        if changed:
            audit.info("oauth.token_revoked", extra={"token_id": token_id})

    async def purge(self) -> int:
        """Delete rows revoked or expired more than the retention period ago."""
        _, now = now_pair(self._clock)
        before = now - timedelta(days=self._settings.oauth_access_token_retention_days)
        async with self._db() as session, session.begin():
            return await user_repos.purge_tokens(session, before)
