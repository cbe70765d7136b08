"""FakeJobStore: an in-memory JobStore for tests of the app side (the SQL store is tested apart)."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from typing import Any

from diffusellm.jobs.model import (
    TERMINAL_STATES,
    Job,
    JobEvent,
    JobState,
    NewJob,
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class FakeJobStore:
    """Dict-backed, one lock around everything, so each method is atomic like the real one."""

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.deliveries: set[str] = set()
        self.timeline: list[JobEvent] = []
        self._lock = threading.Lock()

    def enqueue(self, job: NewJob) -> tuple[Job, bool]:
        with self._lock:
            for old in self.jobs.values():
                if old.idempotency_key == job.idempotency_key:
                    return old, False
            now = _now()
            stored = Job(id=uuid.uuid4().hex[:12], command=job.command, state=JobState.QUEUED,
                         request=job.request, idempotency_key=job.idempotency_key,
                         repo_key=job.request.repo_full_name, max_attempts=job.max_attempts,
                         created_at=now, updated_at=now)
            self.jobs[stored.id] = stored
            return stored, True

    def record_delivery(self, delivery_id: str) -> bool:
        with self._lock:
            if delivery_id in self.deliveries:
                return False
            self.deliveries.add(delivery_id)
            return True

    def claim(self, worker_id: str, lease_seconds: float) -> Job | None:
        with self._lock:
            running = {j.repo_key for j in self.jobs.values() if j.state == JobState.RUNNING}
            for job in sorted(self.jobs.values(), key=lambda j: j.created_at):
                if job.state == JobState.QUEUED and job.repo_key not in running:
                    job.state, job.worker_id = JobState.RUNNING, worker_id
                    job.attempts += 1
                    return job.model_copy()
            return None

    def heartbeat(self, job_id: str, worker_id: str, lease_seconds: float) -> bool:
        job = self.jobs.get(job_id)
        return job is not None and job.worker_id == worker_id and job.state == JobState.RUNNING

    def finish(self, job_id: str, worker_id: str, state: JobState, *,
               result: dict[str, Any] | None = None, error: str | None = None) -> bool:
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None or job.worker_id != worker_id:
                return False
            job.state, job.result, job.error = state, dict(result or {}), error
            job.updated_at = _now()
            return True

    def reap_expired(self) -> list[str]:
        return []

    def cancel(self, job_id: str) -> bool:
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None or job.state in TERMINAL_STATES:
                return False
            job.state = JobState.CANCELLED
            return True

    def approve(self, job_id: str) -> bool:
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None or job.state != JobState.WAITING_APPROVAL:
                return False
            job.state = JobState.QUEUED
            return True

    def prune_deliveries(self, older_than: dt.timedelta) -> int:
        return 0  # the fake keeps delivery ids without times

    def record_verdict(self, job_id: str, verdict: str, source: str) -> bool:
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None or job.state != JobState.SUCCEEDED:
                return False
            job.result = {**job.result, "verdict": verdict, "verdict_source": source, "verdict_at": _now().isoformat()}
        self.add_event(job_id, "verdict", f"{verdict}: {source}")
        return True

    def get(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    def list_jobs(self, *, limit: int = 100, state: JobState | None = None,
                  repo_full_name: str | None = None) -> list[Job]:
        found = [j for j in self.jobs.values()
                 if (state is None or j.state == state)
                 and (repo_full_name is None or j.request.repo_full_name == repo_full_name)]
        return sorted(found, key=lambda j: j.created_at, reverse=True)[:limit]

    def add_event(self, job_id: str, kind: str, message: str,
                  data: dict[str, Any] | None = None) -> None:
        self.timeline.append(JobEvent(job_id=job_id, at=_now(), kind=kind, message=message,
                                      data=dict(data or {})))

    def events(self, job_id: str) -> list[JobEvent]:
        return [e for e in self.timeline if e.job_id == job_id]
