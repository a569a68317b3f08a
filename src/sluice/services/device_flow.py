"""OAuth 2.0 device authorization (openapi-user.md §6): codes, lookup, approve/deny, poll.

State lives in ``device_authorizations``. Approve and deny are conditional updates from
``pending`` (one winner); the first poll after a decision consumes the row with one conditional
update and, when approved, mints the token in that same transaction, so the plaintext is never
stored. The last-poll time per device code lives in the rate limiter's store (``swap``).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from sluice.adapters.sql import user_repos
from sluice.adapters.sql.tables import DeviceAuthorization
from sluice.services.accounts import AccountService, ConsoleContext, WallClock, now_pair, sha256_hex
from sluice.services.oauth import mint
from sluice.services.ratelimit import RateLimiter, enforce
from sluice.services.user_errors import OAuthProtocolError
from sluice.settings import UserApiSettings

audit = logging.getLogger("sluice.audit")
USER_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXY3456789"
EXPIRES_IN = 900
INTERVAL = 5
APPROVAL_FLOOR = 60
USER_CODE_ATTEMPTS = 5
POLL_STAMP = "device_poll"


def new_device_code() -> str:
    return "dc_" + secrets.token_urlsafe(24)


def new_user_code() -> str:
    chars = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(8))
    return f"{chars[:4]}-{chars[4:]}"


def normalize_user_code(raw: str | None) -> str | None:
    """Trim, upper-case, drop spaces and hyphens; 8 alphabet characters → ``XXXX-XXXX``."""
    if raw is None:
        return None
    chars = raw.strip().upper().replace(" ", "").replace("-", "")
    if len(chars) != 8 or any(c not in USER_CODE_ALPHABET for c in chars):
        return None
    return f"{chars[:4]}-{chars[4:]}"


def iso_offset(value: Any) -> str:
    """``2026-06-01T10:00:00+00:00`` (the poll's ``expires_at``)."""
    return str(value.replace(microsecond=0, tzinfo=UTC).isoformat())


@dataclass(frozen=True, slots=True)
class PendingRequest:
    """What the approval page shows about a pending code."""

    user_code: str
    client_id: str
    device_label: str


class DeviceFlowService:
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

    def known_client(self, client_id: str) -> bool:
        return client_id in self._settings.split(self._settings.known_client_ids)

    async def limit_code_requests(self, client_ip: str) -> None:
        epoch, _ = now_pair(self._clock)
        await enforce(self._limiter, "device_code", client_ip, 60, 3600, epoch)

    async def limit_lookups(self, client_ip: str) -> None:
        epoch, _ = now_pair(self._clock)
        await enforce(self._limiter, "device_lookup", client_ip, 60, 300, epoch)

    async def limit_decisions(self, ctx: ConsoleContext) -> None:
        """Approve + deny, JSON and page alike, share one bucket per console session."""
        epoch, _ = now_pair(self._clock)
        limit = self._settings.device_flow_approve_rate_limit_per_hour
        await enforce(self._limiter, "device_approve", ctx.session.id, limit, 3600, epoch)

    async def create(
        self, client_id: str, device_label: str, client_ip: str, verification_uri: str
    ) -> dict[str, Any]:
        if not self.known_client(client_id):
            raise OAuthProtocolError(400, "unsupported_client")
        _, now = now_pair(self._clock)
        device_code = new_device_code()
        for _attempt in range(USER_CODE_ATTEMPTS):
            user_code = new_user_code()
            row = DeviceAuthorization(
                device_code_hash=sha256_hex(device_code),
                user_code=user_code,
                client_id=client_id,
                device_label=device_label,
                created_ip=client_ip[:64],
                created_at=now,
                expires_at=now + timedelta(seconds=EXPIRES_IN),
            )
            try:
                async with self._db() as session, session.begin():
                    session.add(row)
            except IntegrityError:
                continue
            return {
                "device_code": device_code,
                "user_code": user_code,
                "verification_uri": verification_uri,
                "expires_in": EXPIRES_IN,
                "interval": INTERVAL,
            }
        raise OAuthProtocolError(503, "user_code_exhausted")

    async def _live(self, raw_user_code: str | None) -> DeviceAuthorization | None:
        code = normalize_user_code(raw_user_code)
        if code is None:
            return None
        _, now = now_pair(self._clock)
        async with self._db() as session:
            row = await user_repos.device_by_user_code(session, code)
        if row is None or row.expires_at <= now:
            return None
        return row

    async def lookup(self, raw_user_code: str) -> dict[str, Any]:
        row = await self._live(raw_user_code)
        if row is None:
            return {"valid": False, "expires_in_remaining": 0, "client_id": None}
        if row.status != "pending":
            return {"valid": False, "expires_in_remaining": 0, "client_id": row.client_id}
        return {"valid": True, "expires_in_remaining": EXPIRES_IN, "client_id": row.client_id}

    async def pending(self, raw_user_code: str | None) -> PendingRequest | None:
        row = await self._live(raw_user_code)
        if row is None or row.status != "pending":
            return None
        return PendingRequest(row.user_code, row.client_id, row.device_label)

    async def decide(self, ctx: ConsoleContext, raw_user_code: str, approve: bool) -> str:
        """Approve or deny for the session's account; 404 ``expired_or_unknown``, 409 ``already_resolved``."""
        row = await self._live(raw_user_code)
        if row is None:
            raise OAuthProtocolError(404, "expired_or_unknown")
        _, now = now_pair(self._clock)
        status = "approved" if approve else "denied"
        async with self._db() as session, session.begin():
            won = await user_repos.resolve_device(
                session,
                row.id,
                status=status,
                account_id=ctx.account.id,
                tenant_id=ctx.session.current_tenant_id,
                now=now,
                min_expiry=now + timedelta(seconds=APPROVAL_FLOOR),
            )
        if not won:
            raise OAuthProtocolError(409, "already_resolved")
        audit.info(f"oauth.device_flow_{status}", extra={"device_id": row.id, "account_id": ctx.account.id})
        return status

    async def poll(self, device_code: str, client_ip: str) -> dict[str, Any]:
        """One poll, in the spec's order: slow_down, expired, pending, consume, denied, mint."""
        code_hash = sha256_hex(device_code)
        epoch, now = now_pair(self._clock)
        previous = await self._limiter.swap(POLL_STAMP, code_hash, epoch, EXPIRES_IN)
        if previous is not None and epoch - previous < INTERVAL:
            raise OAuthProtocolError(400, "slow_down")
        async with self._db() as session:
            row = await user_repos.device_by_hash(session, code_hash)
        if row is None or row.expires_at <= now:
            raise OAuthProtocolError(400, "expired_token")
        if row.status == "pending":
            raise OAuthProtocolError(400, "authorization_pending")
        if row.created_ip and client_ip and row.created_ip != client_ip:
            audit.info("oauth.device_code_cross_ip_poll", extra={"device_id": row.id, "ip": client_ip})
        return await self.redeem(code_hash)

    async def redeem(self, code_hash: str) -> dict[str, Any]:
        """Consume a decided row exactly once; when approved, mint in the same transaction."""
        _, now = now_pair(self._clock)
        async with self._db() as session, session.begin():
            row = await user_repos.device_by_hash(session, code_hash)
            if row is None or not await user_repos.consume_device(session, row.id, now):
                raise OAuthProtocolError(400, "expired_token")
            account_id = row.approved_account_id
            account = await user_repos.get_account(session, account_id) if account_id else None
            granted = row.status == "approved" and account is not None and account.status == "active"
            if granted and account is not None:
                minted = await mint(
                    session, account, row.client_id, row.device_label, now, self._settings.oauth_ttl_days
                )
                await user_repos.set_device_token(session, row.id, minted.row.id)
                rows = await user_repos.memberships(session, account.id)
        if not granted or account is None:
            raise OAuthProtocolError(400, "access_denied")
        audit.info("oauth.token_minted", extra={"token_id": minted.row.id, "account_id": account.id})
        return {
            "token": minted.token,
            "expires_at": iso_offset(minted.row.expires_at),
            "subject_type": "account",
            "account": {"id": account.id, "email": account.email, "name": account.name},
            "workspaces": [{"id": t.id, "name": t.name, "role": j.role} for j, t in rows],
            "default_workspace_id": AccountService.default_workspace(rows, row.approved_tenant_id),
            "token_id": minted.row.id,
        }

    async def purge(self) -> int:
        """Rows are purged an hour after they expire."""
        _, now = now_pair(self._clock)
        async with self._db() as session, session.begin():
            return await user_repos.purge_devices(session, now - timedelta(hours=1))
