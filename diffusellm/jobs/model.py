"""Job data shared by the app, the store and the workers: states, commands, the frozen request, events."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field


class JobState(StrEnum):
    """Life of a job: queued → running → succeeded | failed | cancelled | dead (attempts exhausted)."""

    QUEUED = "queued"
    WAITING_APPROVAL = "waiting_approval"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    DEAD = "dead"


TERMINAL_STATES = frozenset(
    {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.DEAD}
)


EDITED_SPEC_KEY = "edited_spec"
"""Result key of the spec YAML an approval runs: one the model read from free text during `plan`, or
one a person edited on the admin page (`SqlJobStore.amend_waiting`); SPEC_AUTHOR_KEY says which."""

SPEC_AUTHOR_KEY = "spec_author"
"""Result key of who wrote the spec under EDITED_SPEC_KEY: SPEC_BY_MODEL, or the name of the person who
edited it."""

SPEC_BY_MODEL = "model"
"""SPEC_AUTHOR_KEY's value for a spec the model read from the issue's free text."""


class JobCommand(StrEnum):
    """What the job was asked to do."""

    RUN = "run"  # label or `/diffusellm run`: plan and execute
    PLAN = "plan"  # `/diffusellm plan`: post the plan, wait for approve
    REVISE = "revise"  # `/diffusellm revise ...` or a changes-requested review: new commits on the PR branch


class FrozenRequest(BaseModel):
    """The issue as it was when a trusted user triggered the job; later edits do not leak in."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    repo_full_name: str  # "owner/name", or "local:/abs/path" in local mode
    installation_id: int | None = None
    issue_number: int | None = None
    pr_number: int | None = None
    title: str
    body: str
    trusted_comments: list[str] = []
    instructions: str = ""  # text after `/diffusellm revise`
    sender: str = ""
    text_sha256: str  # hash of title + body + trusted comments, to detect edits


class NewJob(BaseModel):
    """What the app enqueues."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: JobCommand
    request: FrozenRequest
    idempotency_key: str  # sha256 of (repo, issue/pr, command, frozen text)
    delivery_id: str | None = None
    max_attempts: int = 3


class Job(BaseModel):
    """A job as stored."""

    model_config = ConfigDict(extra="forbid")

    id: str
    command: JobCommand
    state: JobState
    request: FrozenRequest
    idempotency_key: str
    repo_key: str  # at most one running job per repo_key
    attempts: int = 0
    max_attempts: int = 3
    worker_id: str | None = None
    lease_expires_at: dt.datetime | None = None
    not_before: dt.datetime | None = None  # back-off: not claimable before this time
    created_at: dt.datetime
    updated_at: dt.datetime
    result: dict[str, Any] = Field(default_factory=dict)  # RunReport JSON, PR url, ...
    error: str | None = None


class JobEvent(BaseModel):
    """One line of a job's timeline (phase started, progress, comment posted, ...)."""

    model_config = ConfigDict(extra="forbid")

    job_id: str
    at: dt.datetime
    kind: str
    message: str
    data: dict[str, Any] = Field(default_factory=dict)


class JobStore(Protocol):
    """Durable job storage; every method is atomic. Implementations: SQLAlchemy on SQLite or PostgreSQL."""

    def enqueue(self, job: NewJob) -> tuple[Job, bool]:
        """Insert unless a job with the same idempotency key exists; returns (job, created)."""
        ...

    def record_delivery(self, delivery_id: str) -> bool:
        """Remember a webhook delivery id; False when it was seen before (a replay)."""
        ...

    def claim(self, worker_id: str, lease_seconds: float) -> Job | None:
        """Atomically take the oldest claimable queued job whose repo has no running job."""
        ...

    def heartbeat(self, job_id: str, worker_id: str, lease_seconds: float) -> bool:
        """Extend the lease; False when the job is no longer this worker's (reaped or cancelled)."""
        ...

    def finish(
        self,
        job_id: str,
        worker_id: str,
        state: JobState,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> bool:
        """Set a terminal state (or re-queue with back-off on a retryable failure when state is QUEUED)."""
        ...

    def reap_expired(self) -> list[str]:
        """Re-queue running jobs whose lease expired (worker died); dead after max_attempts."""
        ...

    def cancel(self, job_id: str) -> bool:
        """Cancel a queued, waiting or running job."""
        ...

    def approve(self, job_id: str) -> bool:
        """Move a job waiting for plan approval back to queued."""
        ...

    def record_verdict(self, job_id: str, verdict: str, source: str) -> bool:
        """Note what became of a finished job's pull request (`accepted`: merged, `rejected`: closed
        unmerged) in its result and timeline; False for an unknown or unfinished job."""
        ...

    def get(self, job_id: str) -> Job | None:
        """One job."""
        ...

    def list_jobs(
        self, *, limit: int = 100, state: JobState | None = None, repo_full_name: str | None = None
    ) -> list[Job]:
        """Newest first."""
        ...

    def add_event(
        self, job_id: str, kind: str, message: str, data: dict[str, Any] | None = None
    ) -> None:
        """Append to a job's timeline."""
        ...

    def events(self, job_id: str) -> list[JobEvent]:
        """A job's timeline, oldest first."""
        ...
