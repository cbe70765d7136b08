"""A scripted executor for worker tests; each run is logged to a file so tests can count executions."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from diffusellm.errors import InputError
from diffusellm.jobs.model import Job
from diffusellm.worker.loop import NEXT_STATE_KEY, ProgressSink, RetryableError

LOG_ENV = "DIFFUSELLM_FAKE_EXECUTOR_LOG"


class FakeJobFailedError(InputError):
    """A failure that carries a result for the store, as the real executor's failures do."""

    def __init__(self, message: str, *, result: dict[str, Any]) -> None:
        super().__init__(message)
        self.result = result


class FakeExecutor:
    """Does what the first word of the job's request body says.

    ok | fail | fail-with-result | retry | crash | approve-me | sleep SECONDS | hang-first (hangs on the first
    attempt only, for kill tests). Appends `start ID PID` and `done ID PID` lines to `log_path`.
    """

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path

    def __call__(self, job: Job, sink: ProgressSink) -> dict[str, Any]:
        self._write("start", job)
        words = job.request.body.split()
        action, args = (words[0], words[1:]) if words else ("ok", [])
        sink.event("progress", f"fake executor: {action}", {"pid": os.getpid()})
        result = self._act(action, args, job, sink)
        self._write("done", job)
        return result

    def _act(self, action: str, args: list[str], job: Job, sink: ProgressSink) -> dict[str, Any]:
        if action == "fail":
            raise InputError("the fake was told to fail", hint="it always does")
        if action == "fail-with-result":
            raise FakeJobFailedError("told the user why", result={"status": "refused"})
        if action == "retry":
            raise RetryableError("the fake hit a transient failure")
        if action == "crash":
            raise RuntimeError("the fake crashed")
        if action == "approve-me":
            return {NEXT_STATE_KEY: "waiting_approval", "plan": "the plan"}
        if action == "sleep":
            _sleep_unless_lost(float(args[0]), sink)
        if action == "hang-first" and self.starts(job.id) == 1:
            time.sleep(600)
        return {"title": job.request.title, "attempt": job.attempts, "pid": os.getpid()}

    def lines(self) -> list[list[str]]:
        """Every logged line, split into words."""
        if not self.log_path.exists():
            return []
        return [line.split() for line in self.log_path.read_text(encoding="utf-8").splitlines()]

    def starts(self, job_id: str) -> int:
        """How many times `job_id` began executing."""
        return sum(1 for line in self.lines() if line[:2] == ["start", job_id])

    def dones(self, job_id: str) -> int:
        """How many times `job_id` finished executing."""
        return sum(1 for line in self.lines() if line[:2] == ["done", job_id])

    def _write(self, what: str, job: Job) -> None:
        with self.log_path.open("a", encoding="utf-8") as out:
            out.write(f"{what} {job.id} {os.getpid()}\n")
            out.flush()
            os.fsync(out.fileno())


def _sleep_unless_lost(seconds: float, sink: ProgressSink) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not sink.lease_lost:
        time.sleep(0.05)


def fake_executor_from_env() -> FakeExecutor:
    """Factory for `python -m diffusellm.worker.remote --execute tests.jobs.fakes:...`."""
    return FakeExecutor(Path(os.environ[LOG_ENV]))
