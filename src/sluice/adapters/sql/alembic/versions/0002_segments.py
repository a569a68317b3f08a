"""Runtime durability: run segments, their tries (lease, fence, job id), the outbox timestamp.

Revision ID: 0002_segments
Revises: 0003_user_api
Create Date: 2026-11-30

The id says where the work was planned; it follows whatever head existed when it was written.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_segments"
down_revision: str | None = "0003_user_api"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "run_segments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("end_reason", sa.String(length=32), nullable=True),
        sa.Column("active_try_id", sa.String(length=36), nullable=True),
        sa.Column("stop_requested_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["workflow_runs.id"],
            name=op.f("fk_run_segments_run_id_workflow_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_segments")),
        sa.UniqueConstraint("run_id", "number", name=op.f("uq_run_segments_run_id_number")),
    )
    op.create_table(
        "segment_tries",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("segment_id", sa.String(length=36), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("fence", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("worker_id", sa.String(length=255), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(), nullable=True),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["run_segments.id"],
            name=op.f("fk_segment_tries_segment_id_run_segments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_tries")),
    )
    op.create_index(op.f("ix_segment_tries_segment_id"), "segment_tries", ["segment_id"], unique=False)
    op.create_index(op.f("ix_segment_tries_run_id"), "segment_tries", ["run_id"], unique=False)
    op.create_index(
        op.f("ix_segment_tries_status_lease_expires_at"),
        "segment_tries",
        ["status", "lease_expires_at"],
        unique=False,
    )
    with op.batch_alter_table("workflow_runs") as batch:
        batch.add_column(sa.Column("pending_events_at", sa.DateTime(), nullable=True))
        batch.create_index(batch.f("ix_workflow_runs_pending_events_at"), ["pending_events_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("workflow_runs") as batch:
        batch.drop_index(batch.f("ix_workflow_runs_pending_events_at"))
        batch.drop_column("pending_events_at")
    op.drop_index(op.f("ix_segment_tries_status_lease_expires_at"), table_name="segment_tries")
    op.drop_index(op.f("ix_segment_tries_run_id"), table_name="segment_tries")
    op.drop_index(op.f("ix_segment_tries_segment_id"), table_name="segment_tries")
    op.drop_table("segment_tries")
    op.drop_table("run_segments")
