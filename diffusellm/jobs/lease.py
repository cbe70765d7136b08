"""Leases: the claim query (oldest claimable job, one running per repository), back-off, reaping."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from diffusellm.jobs.model import JobState
from diffusellm.jobs.schema import job_events, jobs

MAX_BACKOFF = dt.timedelta(hours=6)
Row = Mapping[Any, Any]
"""A result row (SQLAlchemy RowMapping) or a plain dict of column values."""


@dataclass(frozen=True)
class Reaped:
    """A running job whose lease expired: re-queued for another attempt, or dead."""

    job_id: str
    state: JobState
    worker_id: str | None


def backoff_delay(attempts: int, base_seconds: float) -> dt.timedelta:
    """Wait before attempt `attempts + 1`: base × 2^(attempts-1), at most six hours."""
    exponent = max(attempts - 1, 0)
    seconds = base_seconds * (2 ** min(exponent, 30))
    return min(dt.timedelta(seconds=seconds), MAX_BACKOFF)


def repo_key(repo_full_name: str) -> str:
    """GitHub names are case-insensitive ("Owner/Repo" is "owner/repo"); local paths are not."""
    return repo_full_name if repo_full_name.startswith("local:") else repo_full_name.lower()


def claimable(now: dt.datetime, *, skip_locked: bool) -> sa.Executable:
    """The oldest queued job past its back-off whose repository has no running job.

    On PostgreSQL the row is locked with `FOR UPDATE SKIP LOCKED`, so concurrent claimers on any
    number of app instances each take a different row without waiting for one another
    (https://www.postgresql.org/docs/15/sql-select.html#SQL-FOR-UPDATE-SHARE).
    """
    running = jobs.alias("running")
    busy = sa.exists().where(
        running.c.repo_key == jobs.c.repo_key, running.c.state == JobState.RUNNING.value
    )
    query = (
        sa.select(jobs.c.id, jobs.c.attempts, jobs.c.max_attempts)
        .where(
            jobs.c.state == JobState.QUEUED.value,
            sa.or_(jobs.c.not_before.is_(None), jobs.c.not_before <= now),
            ~busy,
        )
        .order_by(jobs.c.created_at, jobs.c.id)
        .limit(1)
    )
    return query.with_for_update(skip_locked=True, of=jobs) if skip_locked else query


def take(conn: Connection, candidate: Row, worker_id: str, lease_until: dt.datetime,
         now: dt.datetime) -> bool:
    """Mark the candidate running under `worker_id`; False if someone else took it first.

    Raises IntegrityError when another job of the same repository started meanwhile.
    """
    done = conn.execute(
        sa.update(jobs)
        .where(jobs.c.id == candidate["id"], jobs.c.state == JobState.QUEUED.value)
        .values(
            state=JobState.RUNNING.value, worker_id=worker_id, lease_expires_at=lease_until,
            attempts=jobs.c.attempts + 1, not_before=None, updated_at=now,
        )
    )
    if done.rowcount != 1:
        return False
    attempt = int(candidate["attempts"]) + 1
    note(conn, str(candidate["id"]), now, "claimed",
         f"claimed by {worker_id} (attempt {attempt} of {candidate['max_attempts']})",
         {"worker_id": worker_id, "attempt": attempt})
    return True


def reap(conn: Connection, now: dt.datetime, backoff_base_seconds: float, *,
         skip_locked: bool) -> list[Reaped]:
    """Re-queue (with back-off) or bury every running job whose lease ran out before `now`."""
    query = sa.select(jobs.c.id, jobs.c.attempts, jobs.c.max_attempts, jobs.c.worker_id).where(
        jobs.c.state == JobState.RUNNING.value, jobs.c.lease_expires_at < now
    )
    if skip_locked:
        query = query.with_for_update(skip_locked=True)
    reaped: list[Reaped] = []
    for row in conn.execute(query).mappings().all():
        reaped.append(_reap_one(conn, row, now, backoff_base_seconds))
    return reaped


def _reap_one(conn: Connection, row: Row, now: dt.datetime,
              backoff_base_seconds: float) -> Reaped:
    attempts, worker = int(row["attempts"]), row["worker_id"]
    why = f"lease expired on worker {worker}: it stopped heartbeating (died or lost the network)"
    values: dict[str, Any] = {"worker_id": None, "lease_expires_at": None, "updated_at": now}
    if attempts >= int(row["max_attempts"]):
        state = JobState.DEAD
        values.update(error=f"{why}; gave up after {attempts} attempts")
    else:
        state = JobState.QUEUED
        values.update(error=why, not_before=now + backoff_delay(attempts, backoff_base_seconds))
    conn.execute(
        sa.update(jobs)
        .where(jobs.c.id == row["id"], jobs.c.state == JobState.RUNNING.value)
        .values(state=state.value, **values)
    )
    note(conn, str(row["id"]), now, "reaped", f"{why}; now {state.value}",
         {"worker_id": worker, "attempt": attempts})
    return Reaped(job_id=str(row["id"]), state=state, worker_id=worker)


def note(conn: Connection, job_id: str, at: dt.datetime, kind: str, message: str,
         data: Mapping[str, Any] | None = None) -> None:
    """Append one line to a job's timeline inside the caller's transaction."""
    conn.execute(
        sa.insert(job_events).values(
            job_id=job_id, at=at, kind=kind, message=message, data=dict(data or {})
        )
    )
