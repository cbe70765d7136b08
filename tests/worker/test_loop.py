"""The worker loop against the real store: outcomes, heartbeats, lost leases, retries, stopping."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from diffusellm.jobs.model import Job, JobState
from diffusellm.jobs.store import SqlJobStore
from diffusellm.worker.loop import StoreSource, run_one, run_worker
from tests.jobs.fakes import FakeExecutor
from tests.jobs.support import new_job, sqlite_store, stored, wait_until


@pytest.fixture
def store(tmp_path: Path) -> SqlJobStore:
    return sqlite_store(tmp_path)


@pytest.fixture
def fake(tmp_path: Path) -> FakeExecutor:
    return FakeExecutor(tmp_path / "executions.log")


def _run(store: SqlJobStore, fake: FakeExecutor, body: str, *, lease: float = 30.0,
         heartbeat: float = 5.0) -> Job:
    job, _ = store.enqueue(new_job(body.replace(" ", "-"), body=body))
    source = StoreSource(store, lease_seconds=lease, heartbeat_seconds=heartbeat, wait_seconds=0)
    assert run_worker(source, fake, stop=threading.Event(), max_jobs=1, worker_id="w1") == 1
    done = stored(store, job.id)
    assert done is not None
    return done


def test_after_job_runs_once_after_each_finished_job(store: SqlJobStore, fake: FakeExecutor) -> None:
    for n in range(2):
        store.enqueue(new_job(f"k{n}", repo=f"o/r{n}"))
    source = StoreSource(store, lease_seconds=30, heartbeat_seconds=5, wait_seconds=0)
    finished: list[int] = []
    after = lambda: finished.append(sum(s.state is JobState.SUCCEEDED for s in store.list_jobs(limit=10)))  # noqa: E731
    assert run_worker(source, fake, stop=threading.Event(), max_jobs=2, after_job=after) == 2
    assert finished == [1, 2], "called after each job had finished, not before"


def test_success_stores_the_result_and_progress(store: SqlJobStore, fake: FakeExecutor) -> None:
    job = _run(store, fake, "ok")
    assert job.state is JobState.SUCCEEDED and job.error is None
    assert job.result["title"] == "Add a flag" and job.result["attempt"] == 1
    kinds = [e.kind for e in store.events(job.id)]
    assert kinds == ["enqueued", "claimed", "progress", "finished"]
    assert fake.starts(job.id) == fake.dones(job.id) == 1


def test_our_errors_fail_the_job_with_their_hint(store: SqlJobStore, fake: FakeExecutor) -> None:
    job = _run(store, fake, "fail")
    assert job.state is JobState.FAILED
    assert job.error == "the fake was told to fail\n  hint: it always does"


def test_a_failure_keeps_the_result_it_carries(store: SqlJobStore,
                                               fake: FakeExecutor) -> None:
    job = _run(store, fake, "fail-with-result")
    assert job.state is JobState.FAILED and job.error == "told the user why"
    assert job.result == {"status": "refused"}


def test_retryable_error_requeues_with_backoff(store: SqlJobStore, fake: FakeExecutor) -> None:
    job = _run(store, fake, "retry")
    assert job.state is JobState.QUEUED and job.not_before is not None
    assert job.error == "the fake hit a transient failure"
    assert store.claim("w2", 30) is None, "back-off: not claimable at once"


def test_a_crash_fails_the_job_as_an_internal_error(store: SqlJobStore,
                                                   fake: FakeExecutor) -> None:
    job = _run(store, fake, "crash")
    assert job.state is JobState.FAILED
    assert job.error == "internal error: RuntimeError: the fake crashed"


def test_plan_can_wait_for_approval(store: SqlJobStore, fake: FakeExecutor) -> None:
    job = _run(store, fake, "approve-me")
    assert job.state is JobState.WAITING_APPROVAL
    assert job.result == {"plan": "the plan"}


def test_heartbeats_keep_a_long_job_alive(store: SqlJobStore, fake: FakeExecutor) -> None:
    stop_reaper = threading.Event()
    reaped: list[str] = []

    def reaper() -> None:
        while not stop_reaper.wait(0.1):
            reaped.extend(store.reap_expired())

    thread = threading.Thread(target=reaper)
    thread.start()
    try:
        job = _run(store, fake, "sleep 3", lease=1.5, heartbeat=0.25)
    finally:
        stop_reaper.set()
        thread.join()
    assert reaped == []
    assert job.state is JobState.SUCCEEDED and job.attempts == 1


def test_cancelled_job_is_not_finished(store: SqlJobStore, fake: FakeExecutor) -> None:
    job, _ = store.enqueue(new_job("long", body="sleep 30"))
    source = StoreSource(store, lease_seconds=30, heartbeat_seconds=0.1, wait_seconds=0)
    claimed = store.claim("w1", 30)
    assert claimed is not None
    outcome: list[object] = []
    runner = threading.Thread(target=lambda: outcome.append(
        run_one(source, fake, claimed, worker_id="w1", heartbeat_seconds=0.1)))
    runner.start()
    wait_until(lambda: fake.starts(job.id) == 1, what="the job to start")
    assert store.cancel(job.id)
    runner.join(20)
    assert outcome == [None], "the loop noticed the lost lease and reported nothing"
    final = stored(store, job.id)
    assert final is not None and final.state is JobState.CANCELLED and final.result == {}
    assert "finished" not in [e.kind for e in store.events(job.id)]


def test_reaped_job_is_not_finished_twice(store: SqlJobStore, fake: FakeExecutor) -> None:
    # The heartbeat is slower than the lease, as when a worker stalls: the reaper takes the job
    # back and the stalled worker's late result is refused.
    job, _ = store.enqueue(new_job("stall", body="sleep 1.5"))
    source = StoreSource(store, lease_seconds=0.5, heartbeat_seconds=60, wait_seconds=0)
    claimed = store.claim("stalled", 0.5)
    assert claimed is not None
    runner = threading.Thread(target=run_one, args=(source, fake, claimed),
                              kwargs={"worker_id": "stalled", "heartbeat_seconds": 60})
    runner.start()
    wait_until(lambda: store.reap_expired() == [job.id], what="the lease to expire")
    runner.join(20)
    final = stored(store, job.id)
    assert final is not None and final.state is JobState.QUEUED and final.attempts == 1
    assert fake.dones(job.id) == 1
    assert "finished" not in [e.kind for e in store.events(job.id)]


def test_idle_worker_picks_up_new_jobs_and_stops(store: SqlJobStore, fake: FakeExecutor) -> None:
    stop = threading.Event()
    source = StoreSource(store, lease_seconds=30, heartbeat_seconds=5, poll_seconds=0.05)
    ran: list[int] = []
    worker = threading.Thread(target=lambda: ran.append(run_worker(source, fake, stop=stop)))
    worker.start()
    jobs = [store.enqueue(new_job(f"k{i}", repo=f"o/r{i}"))[0] for i in range(3)]
    wait_until(lambda: all(stored(store, j.id).state is JobState.SUCCEEDED for j in jobs),
               what="the jobs to finish")
    stop.set()
    worker.join(20)
    assert not worker.is_alive() and ran == [3]


class FakeFlakySource(StoreSource):
    """A StoreSource whose first claim fails as if the database were unreachable."""

    failures = 1

    def claim(self, worker_id: str, stop: threading.Event) -> Job | None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("database unreachable")
        return super().claim(worker_id, stop)


def test_claim_errors_are_survived(store: SqlJobStore, fake: FakeExecutor,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("diffusellm.worker.loop._CLAIM_ERROR_PAUSE_S", 0.05)
    job, _ = store.enqueue(new_job("k"))
    source = FakeFlakySource(store, lease_seconds=30, heartbeat_seconds=5, wait_seconds=0)
    assert run_worker(source, fake, stop=threading.Event(), max_jobs=1) == 1
    assert stored(store, job.id).state is JobState.SUCCEEDED


def test_a_stuck_job_stops_heartbeating_and_is_reaped(store: SqlJobStore, fake: FakeExecutor) -> None:
    # A job past its time limit (here a sleep standing in for a check that never returns) stops
    # extending its lease, so the reaper frees it for another worker and its late result is dropped.
    job, _ = store.enqueue(new_job("stuck", body="sleep 60"))
    source = StoreSource(store, lease_seconds=1.0, heartbeat_seconds=0.1, wait_seconds=0)
    claimed = store.claim("w1", 1.0)
    assert claimed is not None
    outcome: list[object] = []
    runner = threading.Thread(target=lambda: outcome.append(run_one(
        source, fake, claimed, worker_id="w1", heartbeat_seconds=0.1, max_job_seconds=0.3)))
    runner.start()
    wait_until(lambda: store.reap_expired() == [job.id], what="the stuck job's lease to expire")
    runner.join(20)
    assert outcome == [None]
    final = stored(store, job.id)
    assert final is not None and final.state is JobState.QUEUED
    assert "finished" not in [e.kind for e in store.events(job.id)]
