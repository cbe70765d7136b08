"""Jobs, their event timelines and the webhook deliveries already seen.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from diffusellm.jobs.schema import UtcDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_RUNNING = sa.text("state = 'running'")


def upgrade() -> None:
    """Create the three tables and the index that allows one running job per repository."""
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("command", sa.String(16), nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("repo_key", sa.String(400), nullable=False),
        sa.Column("repo_full_name", sa.String(400), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("delivery_id", sa.String(200), nullable=True),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.String(200), nullable=True),
        sa.Column("lease_expires_at", UtcDateTime(), nullable=True),
        sa.Column("not_before", UtcDateTime(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.UniqueConstraint("idempotency_key", name="uq_jobs_idempotency_key"),
    )
    op.create_index("ix_jobs_state_created", "jobs", ["state", "created_at"])
    op.create_index("ix_jobs_repo_key", "jobs", ["repo_key"])
    op.create_index(
        "uq_jobs_running_repo", "jobs", ["repo_key"], unique=True,
        sqlite_where=_RUNNING, postgresql_where=_RUNNING,
    )
    op.create_table(
        "job_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("job_id", sa.String(32), sa.ForeignKey("jobs.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
    )
    op.create_index("ix_job_events_job_id", "job_events", ["job_id"])
    op.create_table(
        "deliveries",
        sa.Column("delivery_id", sa.String(200), primary_key=True),
        sa.Column("received_at", UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    """Drop everything the upgrade created."""
    op.drop_table("deliveries")
    op.drop_index("ix_job_events_job_id", table_name="job_events")
    op.drop_table("job_events")
    op.drop_index("uq_jobs_running_repo", table_name="jobs")
    op.drop_index("ix_jobs_repo_key", table_name="jobs")
    op.drop_index("ix_jobs_state_created", table_name="jobs")
    op.drop_table("jobs")
