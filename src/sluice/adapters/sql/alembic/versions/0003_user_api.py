"""User API: OAuth bearer tokens, device-flow state, console sessions (openapi-user.md §9).

Revision ID: 0003_user_api
Revises: 0001_initial
Create Date: 2026-11-30

The live-token indexes are partial (``WHERE revoked_at IS NULL``), which SQLite and PostgreSQL
both support: one live token per (subject, client, device label) is what makes rotation safe.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_user_api"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = "revoked_at IS NULL"


def _id() -> sa.Column[str]:
    return sa.Column("id", sa.String(length=36), nullable=False)


def _str(name: str, length: int, *, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String(length=length), nullable=nullable)


def _at(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "device_authorizations",
        _id(),
        _str("device_code_hash", 64),
        _str("user_code", 9),
        _str("client_id", 64),
        _str("device_label", 255),
        _str("status", 16),
        _str("created_ip", 64),
        _at("created_at"),
        _at("expires_at"),
        _str("approved_account_id", 36, nullable=True),
        _str("approved_tenant_id", 36, nullable=True),
        _at("resolved_at", nullable=True),
        _at("consumed_at", nullable=True),
        _str("token_id", 36, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_authorizations")),
        sa.UniqueConstraint("device_code_hash", name=op.f("uq_device_authorizations_device_code_hash")),
        sa.UniqueConstraint("user_code", name=op.f("uq_device_authorizations_user_code")),
    )
    op.create_index(
        op.f("ix_device_authorizations_expires_at"), "device_authorizations", ["expires_at"], unique=False
    )

    op.create_table(
        "console_sessions",
        _id(),
        _str("session_hash", 64),
        _str("account_id", 36),
        _str("csrf_token", 64),
        _str("current_tenant_id", 36, nullable=True),
        _at("created_at"),
        _at("expires_at"),
        _at("last_seen_at"),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_console_sessions_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_sessions")),
        sa.UniqueConstraint("session_hash", name=op.f("uq_console_sessions_session_hash")),
    )
    op.create_index(op.f("ix_console_sessions_account_id"), "console_sessions", ["account_id"], unique=False)

    op.create_table(
        "oauth_access_tokens",
        _id(),
        _str("subject_email", 255),
        _str("subject_issuer", 64),
        _str("account_id", 36, nullable=True),
        _str("client_id", 64),
        _str("device_label", 255),
        _str("prefix", 8),
        _str("token_hash", 64, nullable=True),
        _at("created_at"),
        _at("last_used_at", nullable=True),
        _at("expires_at"),
        _at("revoked_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_oauth_access_tokens_account_id_accounts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_access_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_oauth_access_tokens_token_hash")),
    )
    op.create_index(
        "ix_oauth_access_tokens_live_account",
        "oauth_access_tokens",
        ["account_id"],
        unique=False,
        sqlite_where=sa.text(LIVE),
        postgresql_where=sa.text(LIVE),
    )
    op.create_index(
        "uq_oauth_access_tokens_live_subject",
        "oauth_access_tokens",
        ["subject_email", "subject_issuer", "client_id", "device_label"],
        unique=True,
        sqlite_where=sa.text(LIVE),
        postgresql_where=sa.text(LIVE),
    )


def downgrade() -> None:
    op.drop_index("uq_oauth_access_tokens_live_subject", table_name="oauth_access_tokens")
    op.drop_index("ix_oauth_access_tokens_live_account", table_name="oauth_access_tokens")
    op.drop_table("oauth_access_tokens")
    op.drop_index(op.f("ix_console_sessions_account_id"), table_name="console_sessions")
    op.drop_table("console_sessions")
    op.drop_index(op.f("ix_device_authorizations_expires_at"), table_name="device_authorizations")
    op.drop_table("device_authorizations")
