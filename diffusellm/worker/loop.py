"""The worker loop: claim a job, heartbeat while it runs, report progress, finish it once."""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, cast

import structlog

from diffusellm.errors import DiffuseLLMError
from diffusellm.forge.base import ForgeError
from diffusellm.forge.outage import outage_reason
from diffusellm.jobs.model import Job, JobStore
from diffusellm.jobs.wire import Outcome

log = structlog.get_logger(__name__)

NEXT_STATE_KEY = "next_state"
"""An executor returns {"next_state": "waiting_approval", ...} to park a job until `approve`."""
_CLAIM_ERROR_PAUSE_S = 5.0
MAX_JOB_SECONDS = 6 * 3600.0
"""A job still running after this is stuck (every sandboxed check has its own wall limit)."""


class RetryableError(DiffuseLLMError):
    """A failure worth trying again later (network, rate limit, busy GPU): the job is re-queued."""


class ProgressSink(Protocol):
    """Where an executor reports progress; it also says when the job is no longer ours."""

    def event(self, kind: str, message: str, data: Mapping[str, Any] | None = None) -> None:
        """Append a line to the job's timeline (best effort: never raises for a lost lease)."""
        ...

    @property
    def lease_lost(self) -> bool:
        """True once the job was reaped or cancelled: stop early, the result would be dropped."""
        ...


Execute = Callable[[Job, ProgressSink], dict[str, Any]]


class JobSource(Protocol):
    """Where a worker gets jobs and reports on them: the store itself, or the app over HTTP."""

    def claim(self, worker_id: str, stop: threading.Event) -> Job | None:
        """A leased job, or None after waiting a while (returns early once `stop` is set)."""
        ...

    def heartbeat(self, job_id: str, worker_id: str) -> bool:
        """Extend the lease; False when the job is no longer this worker's."""
        ...

    def add_event(self, job_id: str, worker_id: str, kind: str, message: str,
                  data: Mapping[str, Any] | None) -> bool:
        """Record progress; False when the job is no longer this worker's."""
        ...

    def finish(self, job_id: str, worker_id: str, outcome: Outcome) -> bool:
        """End the attempt; False when the job is no longer this worker's."""
        ...

    @property
    def heartbeat_seconds(self) -> float:
        """How often to extend the lease (the app's store.heartbeat_seconds)."""
        ...


def default_worker_id() -> str:
    """Host name, process id and a random tag: unique even for two workers on one host."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class StoreSource:
    """JobSource for the worker thread inside the app: talks to the store directly."""

    def __init__(self, store: JobStore, *, lease_seconds: float, heartbeat_seconds: float,
                 poll_seconds: float = 1.0, wait_seconds: float = 25.0,
                 on_claim: Callable[[Job], None] | None = None) -> None:
        self._store = store
        self._lease = lease_seconds
        self._heartbeat = heartbeat_seconds
        self._poll = poll_seconds
        self._wait = wait_seconds
        self._on_claim = on_claim

    @property
    def heartbeat_seconds(self) -> float:
        """How often the worker extends its lease."""
        return self._heartbeat

    def claim(self, worker_id: str, stop: threading.Event) -> Job | None:
        """Poll the store until a job is claimable, `wait_seconds` pass or `stop` is set."""
        deadline = time.monotonic() + self._wait
        while True:
            job = self._store.claim(worker_id, self._lease)
            if job is not None:
                if self._on_claim is not None:
                    self._on_claim(job)
                return job
            if stop.wait(self._poll) or time.monotonic() >= deadline:
                return None

    def heartbeat(self, job_id: str, worker_id: str) -> bool:
        """Extend the lease in the store."""
        return self._store.heartbeat(job_id, worker_id, self._lease)

    def add_event(self, job_id: str, worker_id: str, kind: str, message: str,
                  data: Mapping[str, Any] | None) -> bool:
        """Append to the timeline (the store does not check the lease for events)."""
        self._store.add_event(job_id, kind, message, dict(data or {}))
        return True

    def finish(self, job_id: str, worker_id: str, outcome: Outcome) -> bool:
        """Finish in the store; a retryable failure goes back to the queue with back-off."""
        return self._store.finish(job_id, worker_id, outcome.store_state(),
                                  result=outcome.result, error=outcome.error)


class _Sink:
    """ProgressSink bound to one job; silent once the lease is lost."""

    def __init__(self, source: JobSource, job_id: str, worker_id: str) -> None:
        self._source, self._job_id, self._worker_id = source, job_id, worker_id
        self._lost = threading.Event()

    @property
    def lease_lost(self) -> bool:
        return self._lost.is_set()

    def mark_lost(self) -> None:
        self._lost.set()

    def event(self, kind: str, message: str, data: Mapping[str, Any] | None = None) -> None:
        if self.lease_lost:
            return
        try:
            if not self._source.add_event(self._job_id, self._worker_id, kind, message, data):
                self.mark_lost()
        except Exception as exc:  # progress is best effort; the job goes on
            log.warning("progress event not recorded", job_id=self._job_id, error=str(exc))


class _Heartbeat(threading.Thread):
    """Extends the lease every `interval` seconds until stopped or the lease is lost."""

    def __init__(self, source: JobSource, job_id: str, worker_id: str, interval: float,
                 sink: _Sink, max_seconds: float) -> None:
        super().__init__(name=f"heartbeat-{job_id}", daemon=True)
        self._source, self._job_id, self._worker_id = source, job_id, worker_id
        self._interval, self._sink = interval, sink
        self._halt = threading.Event()
        self._deadline = time.monotonic() + max_seconds

    def run(self) -> None:
        while not self._halt.wait(self._interval):
            if time.monotonic() >= self._deadline:  # stuck: let the lease lapse so the reaper frees it
                log.error("job ran past its time limit; heartbeats stop", job_id=self._job_id)
                self._sink.mark_lost()
                return
            try:
                alive = self._source.heartbeat(self._job_id, self._worker_id)
            except Exception as exc:  # keep trying: the lease may still be ours
                log.warning("heartbeat failed", job_id=self._job_id, error=str(exc))
                continue
            if not alive:
                log.warning("lease lost (reaped or cancelled)", job_id=self._job_id)
                self._sink.mark_lost()
                return

    def halt(self) -> None:
        self._halt.set()
        self.join()


def _result_of(exc: BaseException) -> dict[str, Any] | None:
    """What an error carried for the store: its `result` attribute when that is a dict."""
    carried: object = getattr(exc, "result", None)
    if isinstance(carried, dict):
        return cast(dict[str, Any], carried)
    return None


def execute_safely(execute: Execute, job: Job, sink: ProgressSink) -> Outcome:
    """Run the executor and turn whatever it does into an Outcome; never raises.

    A diffusellm error with a dict `result` attribute keeps that result on the failed job.
    """
    try:
        result = dict(execute(job, sink))
    except RetryableError as exc:
        return Outcome(state="failed", error=str(exc), retryable=True, result=_result_of(exc))
    except ForgeError as exc:  # raised before the executor could turn it into a RetryableError
        return Outcome(state="failed", error=str(exc), retryable=exc.retryable, result=_result_of(exc))
    except DiffuseLLMError as exc:
        return Outcome(state="failed", error=str(exc), result=_result_of(exc))
    except Exception as exc:
        reason = outage_reason(exc)
        if reason is not None:  # connection, DNS, timeout, 5xx from anything the executor talked to
            log.warning("executor hit an outage; the job is queued again", job_id=job.id, reason=reason)
            said = str(exc) if isinstance(exc, (ConnectionError, TimeoutError)) and str(exc) else ""
            return Outcome(state="failed", error=f"unreachable: {reason}" + (f": {said}" if said else ""),
                           retryable=True)
        log.exception("executor crashed", job_id=job.id)
        return Outcome(state="failed", error=f"internal error: {type(exc).__name__}: {exc}")
    if result.pop(NEXT_STATE_KEY, None) == "waiting_approval":
        return Outcome(state="waiting_approval", result=result)
    return Outcome(state="succeeded", result=result)


def run_one(source: JobSource, execute: Execute, job: Job, *, worker_id: str,
            heartbeat_seconds: float, max_job_seconds: float = MAX_JOB_SECONDS) -> Outcome | None:
    """Run a claimed job with heartbeats; the outcome reported, or None if the lease was lost.

    Heartbeats stop after `max_job_seconds`: a job stuck past it loses its lease to the reaper.
    """
    bound = log.bind(job_id=job.id, worker_id=worker_id, attempt=job.attempts)
    sink = _Sink(source, job.id, worker_id)
    beat = _Heartbeat(source, job.id, worker_id, heartbeat_seconds, sink, max_job_seconds)
    beat.start()
    try:
        outcome = execute_safely(execute, job, sink)
    finally:
        beat.halt()
    if sink.lease_lost:
        bound.warning("job no longer ours; its outcome is dropped", state=outcome.state)
        return None
    try:
        finished = source.finish(job.id, worker_id, outcome)
    except Exception as exc:  # the lease runs out and the reaper re-queues the job
        bound.error("finish not delivered", state=outcome.state, error=str(exc))
        return None
    if not finished:
        bound.warning("finish refused: the lease was lost", state=outcome.state)
        return None
    bound.info("job finished", state=outcome.state, retryable=outcome.retryable)
    return outcome


def run_worker(source: JobSource, execute: Execute, *, stop: threading.Event,
               heartbeat_seconds: float | None = None, worker_id: str | None = None,
               max_jobs: int | None = None, after_job: Callable[[], None] | None = None) -> int:
    """Claim and run jobs one at a time until `stop` is set (or `max_jobs` ran); returns the count.

    `heartbeat_seconds` overrides the source's own interval (the app's store settings); `after_job`
    runs after each job has finished (a remote worker's learning sync).
    """
    me = worker_id or default_worker_id()
    done = 0
    while not stop.is_set() and (max_jobs is None or done < max_jobs):
        try:
            job = source.claim(me, stop)
        except DiffuseLLMError:
            raise  # misconfiguration (bad token, bad URL): retrying cannot help
        except Exception as exc:  # the store or server is down: wait, then try again
            log.warning("claim failed", worker_id=me, error=str(exc))
            stop.wait(_CLAIM_ERROR_PAUSE_S)
            continue
        if job is None:
            continue
        beat = heartbeat_seconds if heartbeat_seconds is not None else source.heartbeat_seconds
        run_one(source, execute, job, worker_id=me, heartbeat_seconds=beat)
        done += 1
        if after_job is not None:
            after_job()
    return done
