"""The async engine and session factory, tuned per backend (SQLite via aiosqlite, PostgreSQL via asyncpg)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel.ext.asyncio.session import AsyncSession

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}

_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=5000",
    "PRAGMA synchronous=NORMAL",
)


def async_url(url: str) -> URL:
    """Parse ``url``, giving a bare ``sqlite://`` / ``postgresql://`` scheme its async driver."""
    parsed = make_url(url)
    driver = _ASYNC_DRIVERS.get(parsed.drivername)
    return parsed.set(drivername=driver) if driver else parsed


def _json_text(value: Any) -> str:
    """JSON columns keep non-ASCII text as is, so keyword searches over them see real characters."""
    return json.dumps(value, ensure_ascii=False)


def create_engine(url: str, *, sqlite_pool_size: int | None = None) -> AsyncEngine:
    """``sqlite_pool_size`` bounds SQLite's pool; 1 makes transactions (all ``BEGIN IMMEDIATE``)
    queue for the connection in FIFO order instead of polling SQLite's busy handler, which
    starves waiters under load."""
    parsed = async_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, sqlite_pool_size)
    return create_async_engine(parsed, pool_pre_ping=True, pool_size=10, json_serializer=_json_text)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


def _sqlite_engine(url: URL, pool_size: int | None = None) -> AsyncEngine:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    pool: dict[str, Any] = {}
    if pool_size is not None:
        pool = {"pool_size": pool_size, "max_overflow": 0, "pool_timeout": 60}
    engine = create_async_engine(url, json_serializer=_json_text, **pool)
    event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
    event.listen(engine.sync_engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # Take transaction control away from the driver, so _sqlite_on_begin decides how BEGIN looks
    # (and PRAGMA journal_mode runs outside any transaction).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    # IMMEDIATE takes the write lock up front: a writer waits (busy_timeout) at BEGIN instead of
    # failing with "database is locked" when it upgrades a read transaction later.
    connection.exec_driver_sql("BEGIN IMMEDIATE")
