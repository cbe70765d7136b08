"""What workers and the app exchange: job outcomes and the worker API's request/response bodies."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from diffusellm.jobs.model import Job, JobState

MAX_CLAIM_WAIT_SECONDS = 60.0


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Outcome(_Body):
    """How a worker ended a job; a retryable failure is queued again with back-off."""

    state: Literal["succeeded", "failed", "cancelled", "waiting_approval"]
    result: dict[str, Any] | None = None
    error: str | None = None
    retryable: bool = False

    def store_state(self) -> JobState:
        """The state to ask the store for: QUEUED stands for "try again later"."""
        if self.state == "failed" and self.retryable:
            return JobState.QUEUED
        return JobState(self.state)


class VerdictsRequest(_Body):
    """Ask what became of the pull requests of finished jobs (the learning loop's verdicts)."""

    job_ids: list[str] = Field(max_length=500)


class Verdict(_Body):
    """A person's verdict on a job's change: merged (accepted) or closed unmerged (rejected)."""

    verdict: Literal["accepted", "rejected"]
    source: str


class VerdictsResponse(_Body):
    """Verdicts by job id; jobs without one (open pull request, unknown id) are left out."""

    verdicts: dict[str, Verdict]


class WorkerRef(_Body):
    """Identifies the worker calling; only the lease holder may touch a running job."""

    worker_id: str = Field(min_length=1, max_length=200)


class ClaimRequest(WorkerRef):
    """Ask for a job, waiting (long poll) up to `wait_seconds` for one to become claimable."""

    wait_seconds: float = Field(default=25.0, ge=0, le=MAX_CLAIM_WAIT_SECONDS)


class ClaimResponse(_Body):
    """A claimed job and the lease timing the worker must keep up with."""

    job: Job
    lease_seconds: float
    heartbeat_seconds: float


class HeartbeatResponse(_Body):
    """The lease was extended by `lease_seconds` from now."""

    lease_seconds: float


class EventRequest(WorkerRef):
    """One progress line for the job's timeline."""

    kind: str = Field(min_length=1, max_length=64)
    message: str = Field(max_length=10_000)
    data: dict[str, Any] = {}


class FinishRequest(WorkerRef):
    """The end of one attempt."""

    outcome: Outcome


class FinishResponse(_Body):
    """The job's state after finishing (queued again, dead, succeeded, ...)."""

    state: JobState


class AdapterSummary(_Body):
    """One LoRA adapter a worker trained, from its `training.json`."""

    name: str = Field(min_length=1, max_length=200)
    date: str = Field(default="", max_length=64)
    base_model: str = Field(default="", max_length=300)
    examples: int | None = None
    steps: int | None = None
    first_loss: float | None = None
    last_loss: float | None = None
    losses: list[float | None] = Field(default=[], max_length=5000)
    warnings: list[str] = Field(default=[], max_length=20)


class LearningReport(WorkerRef):
    """What a worker's learning loop holds, sent by `diffusellm learn sync --server` so the app's training
    page shows it; `worker_id` is the worker's host name (its job worker ids start with it)."""

    active_adapters: list[str] = Field(default=[], max_length=20)
    adapters: list[AdapterSummary] = Field(default=[], max_length=50)
    verdict_counts: dict[str, int] = Field(default={}, max_length=10)
