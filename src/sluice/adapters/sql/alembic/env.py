"""Alembic environment: one migration history for SQLite and PostgreSQL, run over the async engine.

The URL is the ``sqlalchemy.url`` config attribute when called from code (sluice.adapters.sql.migrate),
else ``SLUICE_DATABASE_URL`` through the settings (the ``alembic`` CLI).
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection
from sqlmodel.sql.sqltypes import AutoString

from sluice.adapters.sql.db import async_url, create_engine
from sluice.adapters.sql.tables import metadata
from sluice.settings import Settings

config = context.config

if config.config_file_name is not None and config.file_config.has_section("loggers"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _database_url() -> str:
    url = config.attributes.get("sqlalchemy.url")
    return str(url) if url else Settings().sql_url


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Write SQLModel's AutoString as plain ``sa.String`` so revisions don't import sqlmodel."""
    if type_ == "type" and isinstance(obj, AutoString):
        length = getattr(obj.impl, "length", None)
        return f"sa.String(length={length})" if length else "sa.String()"
    return False


def _configure(**kwargs: Any) -> None:
    context.configure(target_metadata=metadata, render_item=_render_item, **kwargs)


def _run_offline() -> None:
    url = async_url(_database_url())
    _configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=url.get_backend_name() == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # SQLite rebuilds tables in batch mode; with foreign keys on, dropping the old copy would
        # cascade into child rows. The pragma only takes effect outside a transaction.
        _sqlite_pragma(connection, "PRAGMA foreign_keys=OFF")
    try:
        # SQLite DDL is transactional too once the driver leaves BEGIN to us (see db.py).
        _configure(connection=connection, render_as_batch=sqlite, transactional_ddl=True)
        with context.begin_transaction():
            context.run_migrations()
        if sqlite and _sqlite_pragma(connection, "PRAGMA foreign_key_check"):
            raise RuntimeError("migration left rows that break foreign keys (PRAGMA foreign_key_check)")
    finally:
        if sqlite:
            _sqlite_pragma(connection, "PRAGMA foreign_keys=ON")


def _sqlite_pragma(connection: Connection, sql: str) -> list[Any]:
    """Run a pragma on the raw driver connection, outside SQLAlchemy's transaction handling."""
    cursor = connection.connection.cursor()
    try:
        cursor.execute(sql)
        return list(cursor.fetchall())
    finally:
        cursor.close()


async def _run_online() -> None:
    engine = create_engine(_database_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_on)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    _run_offline()
else:
    asyncio.run(_run_online())
