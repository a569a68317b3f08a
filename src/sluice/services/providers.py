"""Model providers: stored with their API key encrypted at rest (Fernet, key derived from the
service secret), looked up by name on every call so a provider added later is seen at once."""

from __future__ import annotations

import base64
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from sluice.adapters.llm.openai_compat import ProviderConfig
from sluice.adapters.sql.tables import ModelProviderRow, utcnow
from sluice.services.errors import InvalidParam

NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_-.")


def fernet(secret_key: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"sluice", info=b"model-provider-keys").derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


class ProviderService:
    def __init__(self, db: async_sessionmaker[AsyncSession], secret_key: str) -> None:
        self._db = db
        self._fernet = fernet(secret_key)

    async def add(self, name: str, base_url: str, api_key: str) -> str:
        """Add a provider, or replace the URL and key of the one with this name."""
        name = name.strip().lower()
        if not name or not set(name) <= NAME_CHARS:
            raise InvalidParam("Provider name must be letters, digits, '_', '-' or '.'")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidParam("Provider base URL must be an http(s) URL")
        token = self._fernet.encrypt(api_key.encode()).decode()
        async with self._db() as session, session.begin():
            row = (await session.exec(select(ModelProviderRow).where(ModelProviderRow.name == name))).first()
            if row is None:
                row = ModelProviderRow(name=name, base_url=base_url, api_key_encrypted=token)
                session.add(row)
            else:
                row.base_url, row.api_key_encrypted, row.updated_at = base_url, token, utcnow()
        return row.id

    async def names(self) -> list[str]:
        async with self._db() as session:
            return [r.name for r in (await session.exec(select(ModelProviderRow))).all()]

    async def config(self, name: str) -> ProviderConfig | None:
        async with self._db() as session:
            row = (
                await session.exec(select(ModelProviderRow).where(ModelProviderRow.name == name.lower()))
            ).first()
        if row is None:
            return None
        try:
            api_key = self._fernet.decrypt(row.api_key_encrypted.encode()).decode()
        except InvalidToken:
            return None  # encrypted with another secret: as good as not configured
        return ProviderConfig(name=row.name, base_url=row.base_url, api_key=api_key)
