"""The job store's tables (SQLAlchemy Core); jobs/migrations creates and changes them."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.engine import Dialect


class UtcDateTime(sa.TypeDecorator[dt.datetime]):
    """Aware UTC datetimes in and out; SQLite keeps them as naive UTC text, which sorts right."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        """Refuse naive datetimes (whose zone is a guess) and store UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the job store needs aware UTC times")
        utc = value.astimezone(dt.UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: dt.datetime | None,
                             dialect: Dialect) -> dt.datetime | None:
        """Always hand back aware UTC datetimes."""
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _event_id_type() -> sa.types.TypeEngine[int]:
    # SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid alias), not a BIGINT one.
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


metadata = sa.MetaData()

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("command", sa.String(16), nullable=False),
    sa.Column("state", sa.String(24), nullable=False),
    sa.Column("repo_key", sa.String(400), nullable=False),
    sa.Column("repo_full_name", sa.String(400), nullable=False),
    sa.Column("idempotency_key", sa.String(200), nullable=False),
    sa.Column("delivery_id", sa.String(200), nullable=True),
    sa.Column("request", sa.JSON(), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False, default=0),
    sa.Column("max_attempts", sa.Integer(), nullable=False),
    sa.Column("worker_id", sa.String(200), nullable=True),
    sa.Column("lease_expires_at", UtcDateTime(), nullable=True),
    sa.Column("not_before", UtcDateTime(), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("result", sa.JSON(), nullable=False),
    sa.Column("error", sa.Text(), nullable=True),
    sa.UniqueConstraint("idempotency_key", name="uq_jobs_idempotency_key"),
    sa.Index("ix_jobs_state_created", "state", "created_at"),
    sa.Index("ix_jobs_repo_key", "repo_key"),
    # The database itself guarantees at most one running job per repository, even when two
    # workers on two app instances race: the second claim fails and retries.
    sa.Index(
        "uq_jobs_running_repo",
        "repo_key",
        unique=True,
        sqlite_where=sa.text("state = 'running'"),
        postgresql_where=sa.text("state = 'running'"),
    ),
)

job_events = sa.Table(
    "job_events",
    metadata,
    sa.Column("id", _event_id_type(), primary_key=True, autoincrement=True),
    sa.Column(
        "job_id", sa.String(32), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False,
        index=True,
    ),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("message", sa.Text(), nullable=False),
    sa.Column("data", sa.JSON(), nullable=False),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("delivery_id", sa.String(200), primary_key=True),
    sa.Column("received_at", UtcDateTime(), nullable=False),
)
