"""Human input: forms, deliveries, recipients, pauses, resume requests.

Revision ID: 0005_human_input
Revises: 0006_service_files_chat
Create Date: 2026-11-30 03:22:31.853045
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_human_input"
down_revision: str | None = "0006_service_files_chat"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "human_input_forms",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("workflow_run_id", sa.String(length=36), nullable=True),
        sa.Column("node_id", sa.String(length=255), nullable=False),
        sa.Column("node_execution_id", sa.String(length=36), nullable=True),
        sa.Column("form_kind", sa.String(length=16), nullable=False),
        sa.Column("form_definition", sa.JSON(), nullable=False),
        sa.Column("rendered_content", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("expiration_time", sa.DateTime(), nullable=False),
        sa.Column("selected_action_id", sa.String(length=200), nullable=True),
        sa.Column("submitted_data", sa.JSON(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(), nullable=True),
        sa.Column("submission_user_id", sa.String(length=36), nullable=True),
        sa.Column("submission_end_user_id", sa.String(length=36), nullable=True),
        sa.Column("completed_by_recipient_id", sa.String(length=36), nullable=True),
        sa.Column("closed_reason", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_human_input_forms")),
        sa.UniqueConstraint("node_execution_id", name=op.f("uq_human_input_forms_node_execution_id")),
    )
    with op.batch_alter_table("human_input_forms", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_human_input_forms_status_created_at"), ["status", "created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_human_input_forms_status_expiration_time"),
            ["status", "expiration_time"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_human_input_forms_workflow_run_id_node_id"),
            ["workflow_run_id", "node_id"],
            unique=False,
        )

    op.create_table(
        "workflow_pauses",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workflow_id", sa.String(length=36), nullable=False),
        sa.Column("workflow_run_id", sa.String(length=36), nullable=False),
        sa.Column("segment", sa.Integer(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("resumed_at", sa.DateTime(), nullable=True),
        sa.Column("closed_reason", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_pauses")),
        sa.UniqueConstraint("workflow_run_id", name=op.f("uq_workflow_pauses_workflow_run_id")),
    )
    op.create_table(
        "workflow_resume_requests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workflow_run_id", sa.String(length=36), nullable=False),
        sa.Column("form_id", sa.String(length=36), nullable=True),
        sa.Column("cause", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("enqueued_at", sa.DateTime(), nullable=True),
        sa.Column("consumed_at", sa.DateTime(), nullable=True),
        sa.Column("consumed_by_attempt", sa.String(length=36), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_resume_requests")),
        sa.UniqueConstraint("form_id", name=op.f("uq_workflow_resume_requests_form_id")),
    )
    with op.batch_alter_table("workflow_resume_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_workflow_resume_requests_workflow_run_id_consumed_at"),
            ["workflow_run_id", "consumed_at"],
            unique=False,
        )

    op.create_table(
        "human_input_form_deliveries",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("form_id", sa.String(length=36), nullable=False),
        sa.Column("delivery_method_type", sa.String(length=16), nullable=False),
        sa.Column("delivery_config_id", sa.String(length=36), nullable=True),
        sa.Column("channel_payload", sa.JSON(), nullable=False),
        sa.Column("send_status", sa.String(length=16), nullable=False),
        sa.Column("skip_reason", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["form_id"],
            ["human_input_forms.id"],
            name=op.f("fk_human_input_form_deliveries_form_id_human_input_forms"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_human_input_form_deliveries")),
    )
    with op.batch_alter_table("human_input_form_deliveries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_human_input_form_deliveries_form_id"), ["form_id"], unique=False)

    op.create_table(
        "human_input_form_recipients",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("form_id", sa.String(length=36), nullable=False),
        sa.Column("delivery_id", sa.String(length=36), nullable=False),
        sa.Column("recipient_type", sa.String(length=32), nullable=False),
        sa.Column("recipient_payload", sa.JSON(), nullable=False),
        sa.Column("access_token", sa.String(length=32), nullable=False),
        sa.Column("send_status", sa.String(length=16), nullable=True),
        sa.Column("send_attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["form_id"],
            ["human_input_forms.id"],
            name=op.f("fk_human_input_form_recipients_form_id_human_input_forms"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_human_input_form_recipients")),
        sa.UniqueConstraint("access_token", name=op.f("uq_human_input_form_recipients_access_token")),
    )
    with op.batch_alter_table("human_input_form_recipients", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_human_input_form_recipients_form_id"), ["form_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("human_input_form_recipients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_human_input_form_recipients_form_id"))

    op.drop_table("human_input_form_recipients")
    with op.batch_alter_table("human_input_form_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_human_input_form_deliveries_form_id"))

    op.drop_table("human_input_form_deliveries")
    with op.batch_alter_table("workflow_resume_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workflow_resume_requests_workflow_run_id_consumed_at"))

    op.drop_table("workflow_resume_requests")
    op.drop_table("workflow_pauses")
    with op.batch_alter_table("human_input_forms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_human_input_forms_workflow_run_id_node_id"))
        batch_op.drop_index(batch_op.f("ix_human_input_forms_status_expiration_time"))
        batch_op.drop_index(batch_op.f("ix_human_input_forms_status_created_at"))

    op.drop_table("human_input_forms")
