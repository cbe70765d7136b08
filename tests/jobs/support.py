"""Helpers for job tests: jobs to enqueue, a settable clock, a real uvicorn server in a thread."""

from __future__ import annotations

import datetime as dt
import hashlib
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import uvicorn
from fastapi import FastAPI

from diffusellm.jobs.model import FrozenRequest, Job, JobCommand, JobStore, NewJob
from diffusellm.jobs.store import Clock, SqlJobStore, utc_now

T0 = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
R = TypeVar("R")


def new_job(key: str, *, repo: str = "octo/demo", body: str = "ok", title: str = "Add a flag",
            max_attempts: int = 3, command: JobCommand = JobCommand.RUN) -> NewJob:
    """A job for `repo` whose idempotency key is `key`; `body` scripts the FakeExecutor."""
    text = f"{title}\n{body}"
    request = FrozenRequest(repo_full_name=repo, issue_number=7, title=title, body=body,
                            text_sha256=hashlib.sha256(text.encode()).hexdigest())
    return NewJob(command=command, request=request, idempotency_key=key, delivery_id=f"d-{key}",
                  max_attempts=max_attempts)


class FakeClock:
    """A clock tests move by hand; thread-safe."""

    def __init__(self, start: dt.datetime = T0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> dt.datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        with self._lock:
            self._now += dt.timedelta(seconds=seconds)


def sqlite_store(tmp_path: Path, *, clock: Clock = utc_now,
                 backoff_base_seconds: float = 30.0) -> SqlJobStore:
    """A store in a fresh SQLite file under tmp_path."""
    return SqlJobStore(f"sqlite:///{tmp_path / 'jobs.sqlite'}", clock=clock,
                       backoff_base_seconds=backoff_base_seconds)


def wait_until(condition: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    """Poll `condition` until true; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.05)


def stored(store: JobStore, job_id: str) -> Job:
    """The job as stored now; it must exist."""
    job = store.get(job_id)
    assert job is not None, f"job {job_id} is missing from the store"
    return job


def run_in_threads(count: int, work: Callable[[int], R]) -> list[R]:
    """Run `work(i)` in `count` threads released together; re-raise the first failure."""
    barrier = threading.Barrier(count)
    results: dict[int, R] = {}
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as exc:  # collected and re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    if errors:
        raise errors[0]
    return [results[i] for i in range(count)]


class AppServer:
    """Serves a FastAPI app with uvicorn on 127.0.0.1 (a free port) in a thread."""

    def __init__(self, app: FastAPI) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        daemon=True)

    def __enter__(self) -> AppServer:
        self._thread.start()
        wait_until(lambda: self._server.started, 30, "uvicorn to start")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.should_exit = True
        self._thread.join(30)
        self._sock.close()
