"""Initial schema: workspaces, accounts, apps and their versions, keys, end users, runs and logs.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-30

apps.workflow_id -> workflows.id and workflows.app_id -> apps.id form a cycle. PostgreSQL gets the
apps side as a separate ALTER once both tables exist; SQLite cannot add a foreign key later, but
accepts one that names a table not created yet, so there it is declared inline.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_WORKFLOW_FK = "fk_apps_workflow_id_workflows"


def _id() -> sa.Column[str]:
    return sa.Column("id", sa.String(length=36), nullable=False)


def _str(name: str, length: int, *, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String(length=length), nullable=nullable)


def _json(name: str, *, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, sa.JSON(), nullable=nullable)


def _at(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(), nullable=nullable)


def _is_sqlite() -> bool:
    return op.get_context().dialect.name == "sqlite"


def upgrade() -> None:
    op.create_table(
        "tenants",
        _id(),
        _str("name", 255),
        _str("status", 16),
        _at("created_at"),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
    )
    op.create_table(
        "accounts",
        _id(),
        _str("name", 255),
        _str("email", 255),
        _str("password_hash", 255, nullable=True),
        _str("status", 16),
        _at("last_login_at", nullable=True),
        _at("created_at"),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("email", name=op.f("uq_accounts_email")),
    )
    op.create_table(
        "tenant_account_joins",
        _id(),
        _str("tenant_id", 36),
        _str("account_id", 36),
        _str("role", 16),
        sa.Column("current", sa.Boolean(), nullable=False),
        _at("created_at"),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_tenant_account_joins_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_tenant_account_joins_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenant_account_joins")),
        sa.UniqueConstraint(
            "tenant_id", "account_id", name=op.f("uq_tenant_account_joins_tenant_id_account_id")
        ),
    )
    op.create_index(
        op.f("ix_tenant_account_joins_account_id"), "tenant_account_joins", ["account_id"], unique=False
    )

    app_workflow_fk = sa.ForeignKeyConstraint(
        ["workflow_id"], ["workflows.id"], name=op.f(APP_WORKFLOW_FK), ondelete="SET NULL"
    )
    op.create_table(
        "apps",
        _id(),
        _str("tenant_id", 36),
        _str("name", 255),
        sa.Column("description", sa.Text(), nullable=False),
        _str("mode", 32),
        _str("status", 16),
        sa.Column("enable_api", sa.Boolean(), nullable=False),
        _str("workflow_id", 36, nullable=True),
        _str("icon_type", 255, nullable=True),
        _str("icon", 255, nullable=True),
        _str("icon_background", 255, nullable=True),
        _str("created_by", 36, nullable=True),
        _str("updated_by", 36, nullable=True),
        _at("created_at"),
        _at("updated_at"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_apps_tenant_id_tenants"), ondelete="CASCADE"
        ),
        *([app_workflow_fk] if _is_sqlite() else []),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_apps")),
    )
    op.create_index(op.f("ix_apps_tenant_id_updated_at"), "apps", ["tenant_id", "updated_at"], unique=False)
    op.create_table(
        "workflows",
        _id(),
        _str("tenant_id", 36),
        _str("app_id", 36),
        _str("version", 64),
        sa.Column("dsl", sa.Text(), nullable=False),
        _json("graph", nullable=False),
        _json("features", nullable=False),
        _json("environment_variables", nullable=False),
        _json("conversation_variables", nullable=False),
        _str("fingerprint", 64),
        _str("created_by", 36, nullable=True),
        _at("created_at"),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_workflows_app_id_apps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflows")),
        sa.UniqueConstraint("app_id", "version", name=op.f("uq_workflows_app_id_version")),
    )
    if not _is_sqlite():
        op.create_foreign_key(
            op.f(APP_WORKFLOW_FK), "apps", "workflows", ["workflow_id"], ["id"], ondelete="SET NULL"
        )

    op.create_table(
        "tags",
        _id(),
        _str("tenant_id", 36),
        _str("type", 16),
        _str("name", 50),
        _at("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tags")),
    )
    op.create_index(op.f("ix_tags_tenant_id_type"), "tags", ["tenant_id", "type"], unique=False)
    op.create_table(
        "tag_bindings",
        _id(),
        _str("tenant_id", 36),
        _str("tag_id", 36),
        _str("target_id", 36),
        _at("created_at"),
        sa.ForeignKeyConstraint(
            ["tag_id"], ["tags.id"], name=op.f("fk_tag_bindings_tag_id_tags"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tag_bindings")),
        sa.UniqueConstraint("tag_id", "target_id", name=op.f("uq_tag_bindings_tag_id_target_id")),
    )
    op.create_index(op.f("ix_tag_bindings_target_id"), "tag_bindings", ["target_id"], unique=False)

    op.create_table(
        "api_keys",
        _id(),
        _str("tenant_id", 36),
        _str("app_id", 36),
        _str("type", 16),
        _str("token_hash", 64),
        _str("token_prefix", 8),
        _str("token_last4", 4),
        _str("created_by", 36, nullable=True),
        _at("created_at"),
        _at("last_used_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_api_keys_app_id_apps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_keys_token_hash")),
    )
    op.create_index(op.f("ix_api_keys_app_id"), "api_keys", ["app_id"], unique=False)
    op.create_table(
        "end_users",
        _id(),
        _str("tenant_id", 36),
        _str("app_id", 36),
        _str("type", 16),
        _str("session_id", 255),
        sa.Column("is_anonymous", sa.Boolean(), nullable=False),
        _str("name", 255, nullable=True),
        _str("external_user_id", 255, nullable=True),
        _at("created_at"),
        _at("updated_at"),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_end_users_app_id_apps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_end_users")),
        sa.UniqueConstraint("app_id", "type", "session_id", name=op.f("uq_end_users_app_id_type_session_id")),
    )

    op.create_table(
        "workflow_runs",
        _id(),
        _str("tenant_id", 36),
        _str("app_id", 36),
        _str("workflow_id", 36),
        _str("task_id", 36),
        _str("version", 64),
        _str("triggered_from", 32),
        _str("created_from", 32),
        _json("inputs", nullable=False),
        _json("outputs", nullable=True),
        _str("status", 32),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("elapsed_time", sa.Float(), nullable=False),
        sa.Column("total_tokens", sa.Integer(), nullable=False),
        sa.Column("total_steps", sa.Integer(), nullable=False),
        sa.Column("exceptions_count", sa.Integer(), nullable=False),
        _str("created_by_role", 16),
        _str("created_by", 36),
        _at("created_at"),
        _at("finished_at", nullable=True),
        sa.Column("fence", sa.Integer(), nullable=False),
        _at("stop_requested_at", nullable=True),
        _str("worker_id", 255, nullable=True),
        _at("lease_expires_at", nullable=True),
        sa.Column("segment", sa.Integer(), nullable=False),
        _json("pending_events", nullable=True),
        _json("final_event", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_runs")),
        sa.UniqueConstraint("task_id", name=op.f("uq_workflow_runs_task_id")),
    )
    op.create_index(
        op.f("ix_workflow_runs_app_id_created_at"), "workflow_runs", ["app_id", "created_at"], unique=False
    )
    op.create_index(op.f("ix_workflow_runs_status"), "workflow_runs", ["status"], unique=False)
    op.create_table(
        "workflow_node_executions",
        _id(),
        _str("tenant_id", 36),
        _str("app_id", 36),
        _str("workflow_id", 36),
        _str("workflow_run_id", 36),
        sa.Column("segment", sa.Integer(), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        _str("predecessor_node_id", 255, nullable=True),
        _str("node_id", 255),
        _str("node_type", 64),
        _str("title", 255),
        _json("inputs", nullable=True),
        _json("process_data", nullable=True),
        _json("outputs", nullable=True),
        _str("status", 32),
        sa.Column("error", sa.Text(), nullable=True),
        _str("error_type", 255, nullable=True),
        sa.Column("elapsed_time", sa.Float(), nullable=False),
        _json("execution_metadata", nullable=True),
        _str("container_id", 255),
        _json("event", nullable=True),
        _at("created_at"),
        _at("finished_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["workflow_run_id"],
            ["workflow_runs.id"],
            name=op.f("fk_workflow_node_executions_workflow_run_id_workflow_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_node_executions")),
    )
    op.create_index(
        op.f("ix_workflow_node_executions_workflow_run_id_index"),
        "workflow_node_executions",
        ["workflow_run_id", "index"],
        unique=False,
    )
    op.create_table(
        "workflow_app_logs",
        _id(),
        _str("tenant_id", 36),
        _str("app_id", 36),
        _str("workflow_id", 36),
        _str("workflow_run_id", 36),
        _str("created_from", 32),
        _str("created_by_role", 16),
        _str("created_by", 36),
        _at("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_app_logs")),
        sa.UniqueConstraint("workflow_run_id", name=op.f("uq_workflow_app_logs_workflow_run_id")),
    )
    op.create_index(
        op.f("ix_workflow_app_logs_app_id_created_at"),
        "workflow_app_logs",
        ["app_id", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    # Dropping a table drops its indexes. Break the apps <-> workflows cycle first where it is a
    # separate constraint (on SQLite env.py turns foreign keys off while migrating).
    if not _is_sqlite():
        op.drop_constraint(op.f(APP_WORKFLOW_FK), "apps", type_="foreignkey")
    for table in (
        "workflow_app_logs",
        "workflow_node_executions",
        "workflow_runs",
        "end_users",
        "api_keys",
        "tag_bindings",
        "tags",
        "workflows",
        "apps",
        "tenant_account_joins",
        "accounts",
        "tenants",
    ):
        op.drop_table(table)
