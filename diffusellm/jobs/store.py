"""The durable job store (SQLAlchemy, SQLite or PostgreSQL): enqueue, claim, lease, finish, reap."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from diffusellm.errors import InputError
from diffusellm.jobs import lease
from diffusellm.jobs.engine import make_engine, upgrade_database
from diffusellm.jobs.model import (
    FrozenRequest,
    Job,
    JobCommand,
    JobEvent,
    JobState,
    JobStore,
    NewJob,
)
from diffusellm.jobs.schema import deliveries, job_events, jobs

Clock = Callable[[], dt.datetime]
FINISH_STATES = frozenset({
    JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.WAITING_APPROVAL,
    JobState.QUEUED,
})
_CANCELLABLE = (JobState.QUEUED.value, JobState.WAITING_APPROVAL.value, JobState.RUNNING.value)
_RETRYABLE = (JobState.FAILED.value, JobState.DEAD.value)
_ATTEMPT_KEYS = frozenset({"status", "error", "hint"})
"""Result keys that describe one attempt's end: a retry drops them."""
_CLAIM_TRIES = 8


def utc_now() -> dt.datetime:
    """The store's default clock."""
    return dt.datetime.now(dt.UTC)


class MonitoredJobStore(JobStore, Protocol):
    """A JobStore the app can also health-check and count for /healthz and /metrics."""

    def ping(self) -> None:
        """Raise when the database cannot be reached."""
        ...

    def count_by_state(self) -> dict[JobState, int]:
        """How many jobs are in each state (every state present, zero included)."""
        ...

    def holds_lease(self, job_id: str, worker_id: str) -> bool:
        """Whether `worker_id` is running `job_id` right now."""
        ...

    def prune_deliveries(self, older_than: dt.timedelta) -> int:
        """Forget webhook delivery ids received longer ago than `older_than`; how many."""
        ...


class SqlJobStore:
    """JobStore on SQLAlchemy 2; every method is one transaction, safe across threads and hosts."""

    def __init__(self, url: str, *, backoff_base_seconds: float = 30.0, clock: Clock = utc_now,
                 migrate: bool = True) -> None:
        self._engine = make_engine(url)
        self._clock = clock
        self._backoff_base = backoff_base_seconds
        self._skip_locked = self._engine.dialect.name == "postgresql"
        if migrate:
            upgrade_database(self._engine)

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for migrations and tests)."""
        return self._engine

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    def ping(self) -> None:
        """Raise when the database cannot be reached."""
        with self._engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
            conn.rollback()

    def enqueue(self, job: NewJob) -> tuple[Job, bool]:
        """Insert unless a job with the same idempotency key exists; returns (job, created)."""
        now = self._clock()
        values = _new_row(job, uuid.uuid4().hex, now)
        try:
            with self._engine.begin() as conn:
                conn.execute(sa.insert(jobs).values(**values))
                lease.note(conn, values["id"], now, "enqueued", f"{job.command.value} job queued",
                           {"delivery_id": job.delivery_id})
        except IntegrityError:
            # The unique key decides between concurrent enqueues, never a read before the write.
            existing = self._one(jobs.c.idempotency_key == job.idempotency_key)
            if existing is None:
                raise
            return existing, False
        return _to_job(values), True

    def prune_deliveries(self, older_than: dt.timedelta) -> int:
        """Forget webhook delivery ids received longer ago than `older_than`; how many."""
        cutoff = self._clock() - older_than
        with self._engine.begin() as conn:
            done = conn.execute(sa.delete(deliveries).where(deliveries.c.received_at < cutoff))
        return int(done.rowcount or 0)

    def record_delivery(self, delivery_id: str) -> bool:
        """Remember a webhook delivery id; False when it was seen before (a replay)."""
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    sa.insert(deliveries).values(delivery_id=delivery_id, received_at=self._clock())
                )
        except IntegrityError:
            return False
        return True

    def claim(self, worker_id: str, lease_seconds: float) -> Job | None:
        """Atomically take the oldest claimable queued job whose repo has no running job."""
        for _ in range(_CLAIM_TRIES):
            try:
                job, look_again = self._claim_once(worker_id, lease_seconds)
            except IntegrityError:
                # Another claimer started a job of the same repository first; look again.
                continue
            if not look_again:
                return job
        return None

    def _claim_once(self, worker_id: str, lease_seconds: float) -> tuple[Job | None, bool]:
        now = self._clock()
        with self._engine.begin() as conn:
            candidate = conn.execute(lease.claimable(now, skip_locked=self._skip_locked))
            row = candidate.mappings().first()
            if row is None:
                return None, False
            until = now + dt.timedelta(seconds=lease_seconds)
            if not lease.take(conn, row, worker_id, until, now):
                return None, True
            return _fetch(conn, jobs.c.id == row["id"]), False

    def heartbeat(self, job_id: str, worker_id: str, lease_seconds: float) -> bool:
        """Extend the lease; False when the job is no longer this worker's (reaped or cancelled)."""
        now = self._clock()
        with self._engine.begin() as conn:
            done = conn.execute(
                sa.update(jobs)
                .where(*_held(job_id, worker_id))
                .values(lease_expires_at=now + dt.timedelta(seconds=lease_seconds), updated_at=now)
            )
            return done.rowcount == 1

    def holds_lease(self, job_id: str, worker_id: str) -> bool:
        """Whether `worker_id` is running `job_id` right now."""
        return self._one(*_held(job_id, worker_id)) is not None

    def finish(self, job_id: str, worker_id: str, state: JobState, *,
               result: dict[str, Any] | None = None, error: str | None = None) -> bool:
        """Set a terminal state (or re-queue with back-off: a retryable failure, state QUEUED)."""
        if state not in FINISH_STATES:
            raise InputError(
                f"a worker cannot finish a job as {state.value!r}",
                hint=f"finish as one of {sorted(s.value for s in FINISH_STATES)}",
            )
        now = self._clock()
        with self._engine.begin() as conn:
            query = sa.select(jobs.c.attempts, jobs.c.max_attempts).where(*_held(job_id, worker_id))
            row = conn.execute(query.with_for_update()).mappings().first()
            if row is None:
                return False
            final = self._finish_values(state, row, now, error)
            if result is not None:
                final["result"] = result
            conn.execute(sa.update(jobs).where(jobs.c.id == job_id).values(**final))
            lease.note(conn, job_id, now, "finished", _finish_message(final, worker_id),
                       {"worker_id": worker_id, "error": final.get("error")})
        return True

    def _finish_values(self, state: JobState, row: lease.Row, now: dt.datetime,
                       error: str | None) -> dict[str, Any]:
        values: dict[str, Any] = {"state": state.value, "lease_expires_at": None,
                                  "updated_at": now, "error": error}
        if state is not JobState.QUEUED:
            return values
        attempts = int(row["attempts"])
        if attempts >= int(row["max_attempts"]):
            why = error or "retryable failure"
            values.update(state=JobState.DEAD.value,
                          error=f"{why}; gave up after {attempts} attempts")
            return values
        delay = lease.backoff_delay(attempts, self._backoff_base)
        values.update(worker_id=None, not_before=now + delay)
        return values

    def reap_expired(self) -> list[str]:
        """Re-queue running jobs whose lease expired (worker died); dead after max_attempts."""
        with self._engine.begin() as conn:
            reaped = lease.reap(conn, self._clock(), self._backoff_base,
                                skip_locked=self._skip_locked)
        return [r.job_id for r in reaped]

    def cancel(self, job_id: str) -> bool:
        """Cancel a queued, waiting or running job."""
        return self._transition(job_id, _CANCELLABLE, JobState.CANCELLED, "cancelled",
                                {"lease_expires_at": None})

    def approve(self, job_id: str) -> bool:
        """Move a job waiting for plan approval back to queued (with a fresh set of attempts)."""
        return self._transition(job_id, (JobState.WAITING_APPROVAL.value,), JobState.QUEUED,
                                "approved", {"attempts": 0, "not_before": None, "worker_id": None})

    def retry(self, job_id: str) -> bool:
        """Queue a failed or dead job again, now, with a fresh set of attempts; the last attempt's
        status, error and hint leave its result (what the approval and the forge need stays)."""
        now = self._clock()
        where = (jobs.c.id == job_id, jobs.c.state.in_(_RETRYABLE))
        with self._engine.begin() as conn:
            row = conn.execute(sa.select(jobs.c.result).where(*where).with_for_update()).first()
            if row is None:
                return False
            previous: dict[str, Any] = row[0] or {}
            kept = {k: v for k, v in previous.items() if k not in _ATTEMPT_KEYS}
            done = conn.execute(sa.update(jobs).where(*where).values(
                state=JobState.QUEUED.value, attempts=0, not_before=None, worker_id=None,
                lease_expires_at=None, error=None, result=kept, updated_at=now))
            if done.rowcount != 1:
                return False
            lease.note(conn, job_id, now, "retried", "retried; now queued")
        return True

    def amend_waiting(self, job_id: str, changes: Mapping[str, Any], message: str) -> bool:
        """Merge `changes` into the result of a job waiting for approval (an edited spec, say)
        and note `message` in its timeline; False unless the job is waiting for approval."""
        return self._merge_result(job_id, (JobState.WAITING_APPROVAL,), changes, "amended", message)

    def record_verdict(self, job_id: str, verdict: str, source: str) -> bool:
        """Note what became of a finished job's pull request in its result and timeline."""
        changes = {"verdict": verdict, "verdict_source": source, "verdict_at": self._clock().isoformat()}
        return self._merge_result(job_id, (JobState.SUCCEEDED,), changes, "verdict", f"{verdict}: {source}")

    def _merge_result(self, job_id: str, states: tuple[JobState, ...], changes: Mapping[str, Any], kind: str,
                      message: str) -> bool:
        now = self._clock()
        where = (jobs.c.id == job_id, jobs.c.state.in_([s.value for s in states]))
        with self._engine.begin() as conn:
            row = conn.execute(sa.select(jobs.c.result).where(*where).with_for_update()).first()
            if row is None:
                return False
            merged: dict[str, Any] = {**(row[0] or {}), **changes}
            done = conn.execute(sa.update(jobs).where(*where).values(result=merged, updated_at=now))
            if done.rowcount != 1:
                return False
            lease.note(conn, job_id, now, kind, message, {"keys": sorted(changes)})
        return True

    def _transition(self, job_id: str, sources: tuple[str, ...], target: JobState, kind: str,
                    extra: dict[str, Any]) -> bool:
        now = self._clock()
        with self._engine.begin() as conn:
            done = conn.execute(
                sa.update(jobs)
                .where(jobs.c.id == job_id, jobs.c.state.in_(sources))
                .values(state=target.value, updated_at=now, **extra)
            )
            if done.rowcount != 1:
                return False
            lease.note(conn, job_id, now, kind, f"{kind}; now {target.value}")
        return True

    def get(self, job_id: str) -> Job | None:
        """One job."""
        return self._one(jobs.c.id == job_id)

    def list_jobs(self, *, limit: int = 100, state: JobState | None = None,
                  repo_full_name: str | None = None) -> list[Job]:
        """Newest first."""
        query = sa.select(jobs).order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(limit)
        if state is not None:
            query = query.where(jobs.c.state == state.value)
        if repo_full_name is not None:
            query = query.where(jobs.c.repo_key == lease.repo_key(repo_full_name))
        with self._engine.begin() as conn:
            return [_to_job(row) for row in conn.execute(query).mappings().all()]

    def count_by_state(self) -> dict[JobState, int]:
        """How many jobs are in each state (every state present, zero included)."""
        query = sa.select(jobs.c.state, sa.func.count()).group_by(jobs.c.state)
        counts = dict.fromkeys(JobState, 0)
        with self._engine.begin() as conn:
            for state, count in conn.execute(query).all():
                counts[JobState(state)] = int(count)
        return counts

    def add_event(self, job_id: str, kind: str, message: str,
                  data: dict[str, Any] | None = None) -> None:
        """Append to a job's timeline."""
        try:
            with self._engine.begin() as conn:
                lease.note(conn, job_id, self._clock(), kind, message, data)
        except IntegrityError:
            raise InputError(f"no job {job_id!r} to add an event to",
                             hint="pass the id of an existing job") from None

    def events(self, job_id: str) -> list[JobEvent]:
        """A job's timeline, oldest first."""
        query = sa.select(job_events).where(job_events.c.job_id == job_id).order_by(job_events.c.id)
        with self._engine.begin() as conn:
            rows = conn.execute(query).mappings().all()
        return [JobEvent(job_id=r["job_id"], at=r["at"], kind=r["kind"], message=r["message"],
                         data=r["data"]) for r in rows]

    def _one(self, *where: sa.ColumnElement[bool]) -> Job | None:
        with self._engine.begin() as conn:
            return _fetch(conn, *where)


def _held(job_id: str, worker_id: str) -> tuple[sa.ColumnElement[bool], ...]:
    return (jobs.c.id == job_id, jobs.c.worker_id == worker_id,
            jobs.c.state == JobState.RUNNING.value)


def _fetch(conn: Connection, *where: sa.ColumnElement[bool]) -> Job | None:
    row = conn.execute(sa.select(jobs).where(*where)).mappings().first()
    return None if row is None else _to_job(row)


def _new_row(job: NewJob, job_id: str, now: dt.datetime) -> dict[str, Any]:
    return {
        "id": job_id, "command": job.command.value, "state": JobState.QUEUED.value,
        "repo_key": lease.repo_key(job.request.repo_full_name),
        "repo_full_name": job.request.repo_full_name, "idempotency_key": job.idempotency_key,
        "delivery_id": job.delivery_id, "request": job.request.model_dump(mode="json"),
        "attempts": 0, "max_attempts": job.max_attempts, "worker_id": None,
        "lease_expires_at": None, "not_before": None, "created_at": now, "updated_at": now,
        "result": {}, "error": None,
    }


def _to_job(row: lease.Row) -> Job:
    return Job(
        id=row["id"], command=JobCommand(row["command"]), state=JobState(row["state"]),
        request=FrozenRequest.model_validate(row["request"]),
        idempotency_key=row["idempotency_key"], repo_key=row["repo_key"],
        attempts=row["attempts"], max_attempts=row["max_attempts"], worker_id=row["worker_id"],
        lease_expires_at=row["lease_expires_at"], not_before=row["not_before"],
        created_at=row["created_at"], updated_at=row["updated_at"], result=row["result"] or {},
        error=row["error"],
    )


def _finish_message(values: Mapping[str, Any], worker_id: str) -> str:
    state = values["state"]
    if state == JobState.QUEUED.value:
        return f"{worker_id} hit a retryable failure; queued again after {values['not_before']}"
    return f"{worker_id} finished the job: {state}"
