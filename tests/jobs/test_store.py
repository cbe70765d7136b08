"""The job store's behaviour on SQLite and PostgreSQL: idempotency, claims, leases, retries, timelines."""

from __future__ import annotations

import datetime as dt

import pytest

from diffusellm.errors import InputError
from diffusellm.jobs.model import Job, JobCommand, JobState
from diffusellm.jobs.store import SqlJobStore
from tests.jobs.support import T0, FakeClock, new_job, stored

LEASE = 60.0


def _take(store: SqlJobStore, worker: str) -> Job:
    job = store.claim(worker, LEASE)
    assert job is not None, "a job was claimable"
    return job


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(store_url: str, clock: FakeClock) -> SqlJobStore:
    return SqlJobStore(store_url, clock=clock, backoff_base_seconds=10.0)


def test_enqueue_twice_returns_the_same_job(store: SqlJobStore) -> None:
    first, created = store.enqueue(new_job("k1"))
    again, created_again = store.enqueue(new_job("k1", body="a later edit"))
    assert created and not created_again
    assert again.id == first.id and again.request.body == "ok"
    assert [j.id for j in store.list_jobs()] == [first.id]


def test_enqueued_job_round_trips(store: SqlJobStore) -> None:
    job, _ = store.enqueue(new_job("k1", repo="Octo/Demo", command=JobCommand.PLAN))
    saved = stored(store, job.id)
    assert saved == job
    assert saved.state is JobState.QUEUED and saved.command is JobCommand.PLAN
    assert saved.repo_key == "octo/demo" and saved.created_at == T0
    assert saved.created_at.tzinfo is not None
    assert store.get("no-such-job") is None


def test_delivery_replay_is_reported(store: SqlJobStore) -> None:
    assert store.record_delivery("72d3162e-cc78-11e3-81ab-4c9367dc0958")
    assert not store.record_delivery("72d3162e-cc78-11e3-81ab-4c9367dc0958")
    assert store.record_delivery("another")


def test_claim_takes_oldest_first_and_leases_it(store: SqlJobStore, clock: FakeClock) -> None:
    old, _ = store.enqueue(new_job("a", repo="o/one"))
    clock.advance(1)
    young, _ = store.enqueue(new_job("b", repo="o/two"))
    job = _take(store, "w1")
    assert job is not None and job.id == old.id
    assert job.state is JobState.RUNNING and job.worker_id == "w1" and job.attempts == 1
    assert job.lease_expires_at == clock() + dt.timedelta(seconds=LEASE)
    second = _take(store, "w2")
    assert second is not None and second.id == young.id
    assert store.claim("w3", LEASE) is None


def test_one_running_job_per_repository(store: SqlJobStore, clock: FakeClock) -> None:
    first, _ = store.enqueue(new_job("a", repo="o/same"))
    clock.advance(1)
    store.enqueue(new_job("b", repo="O/Same"))
    clock.advance(1)
    other, _ = store.enqueue(new_job("c", repo="o/other"))
    claimed = [store.claim("w1", LEASE), store.claim("w2", LEASE), store.claim("w3", LEASE)]
    assert [j.id if j else None for j in claimed] == [first.id, other.id, None]
    assert store.finish(first.id, "w1", JobState.SUCCEEDED)
    after = _take(store, "w3")
    assert after is not None and after.repo_key == "o/same"


def test_only_the_holder_heartbeats_and_finishes(store: SqlJobStore, clock: FakeClock) -> None:
    store.enqueue(new_job("a"))
    job = _take(store, "w1")
    assert job is not None
    assert not store.heartbeat(job.id, "intruder", LEASE)
    assert not store.finish(job.id, "intruder", JobState.SUCCEEDED)
    clock.advance(30)
    assert store.heartbeat(job.id, "w1", LEASE)
    assert stored(store, job.id).lease_expires_at == clock() + dt.timedelta(seconds=LEASE)
    assert store.holds_lease(job.id, "w1") and not store.holds_lease(job.id, "intruder")
    assert store.finish(job.id, "w1", JobState.SUCCEEDED, result={"pr": "https://x/pull/1"})
    done = stored(store, job.id)
    assert done.state is JobState.SUCCEEDED and done.result == {"pr": "https://x/pull/1"}
    assert not store.finish(job.id, "w1", JobState.FAILED), "a job is finished only once"
    assert not store.heartbeat(job.id, "w1", LEASE)


def test_failed_job_keeps_its_error(store: SqlJobStore) -> None:
    store.enqueue(new_job("a"))
    job = _take(store, "w1")
    assert store.finish(job.id, "w1", JobState.FAILED, error="spec: no target named foo")
    failed = stored(store, job.id)
    assert failed.state is JobState.FAILED and failed.error == "spec: no target named foo"


def test_worker_cannot_finish_into_running_or_dead(store: SqlJobStore) -> None:
    store.enqueue(new_job("a"))
    job = _take(store, "w1")
    for state in (JobState.RUNNING, JobState.DEAD):
        with pytest.raises(InputError, match="cannot finish"):
            store.finish(job.id, "w1", state)


def test_retryable_failure_backs_off_exponentially_then_dies(store: SqlJobStore,
                                                             clock: FakeClock) -> None:
    created, _ = store.enqueue(new_job("a", max_attempts=3))
    waits: list[float] = []
    for attempt in (1, 2):
        job = _take(store, "w1")
        assert job is not None and job.attempts == attempt
        assert store.finish(job.id, "w1", JobState.QUEUED, error="GitHub answered 502")
        queued = stored(store, job.id)
        assert queued.state is JobState.QUEUED and queued.worker_id is None
        assert queued.not_before is not None
        waits.append((queued.not_before - clock()).total_seconds())
        assert store.claim("w1", LEASE) is None, "not claimable during the back-off"
        clock.advance(waits[-1])
    assert waits == [10.0, 20.0]
    job = _take(store, "w1")
    assert job is not None and job.attempts == 3
    assert store.finish(job.id, "w1", JobState.QUEUED, error="GitHub answered 502")
    dead = stored(store, created.id)
    assert dead.state is JobState.DEAD
    assert dead.error is not None
    assert "GitHub answered 502" in dead.error and "3 attempts" in dead.error


def test_expired_lease_is_reaped_and_claimed_again(store: SqlJobStore, clock: FakeClock) -> None:
    store.enqueue(new_job("a"))
    job = _take(store, "dead-worker")
    clock.advance(LEASE - 1)
    assert store.reap_expired() == [], "a live lease is left alone"
    clock.advance(2)
    assert store.reap_expired() == [job.id]
    reaped = stored(store, job.id)
    assert reaped.state is JobState.QUEUED and reaped.worker_id is None
    assert "dead-worker" in (reaped.error or "")
    assert store.claim("w2", LEASE) is None, "back-off applies after a reap too"
    clock.advance(10)
    again = _take(store, "w2")
    assert again is not None and again.id == job.id and again.attempts == 2
    assert not store.heartbeat(job.id, "dead-worker", LEASE)
    assert not store.finish(job.id, "dead-worker", JobState.SUCCEEDED)
    assert store.finish(job.id, "w2", JobState.SUCCEEDED)


def test_attempts_exhausted_by_expiry_means_dead(store: SqlJobStore, clock: FakeClock) -> None:
    created, _ = store.enqueue(new_job("a", max_attempts=2))
    for _ in range(2):
        clock.advance(3600)
        assert store.claim("flaky", LEASE) is not None
        clock.advance(LEASE + 1)
        assert store.reap_expired() == [created.id]
    dead = stored(store, created.id)
    assert dead.state is JobState.DEAD and "gave up after 2 attempts" in (dead.error or "")
    clock.advance(3600)
    assert store.claim("w", LEASE) is None


def test_cancel_running_and_queued_jobs(store: SqlJobStore, clock: FakeClock) -> None:
    first, _ = store.enqueue(new_job("a", repo="o/one"))
    clock.advance(1)
    queued, _ = store.enqueue(new_job("b", repo="o/one"))
    running = _take(store, "w1")
    assert running is not None and running.id == first.id
    assert store.cancel(running.id)
    assert not store.heartbeat(running.id, "w1", LEASE), "the worker learns it was cancelled"
    assert not store.finish(running.id, "w1", JobState.SUCCEEDED)
    assert stored(store, running.id).state is JobState.CANCELLED
    assert not store.cancel(running.id), "already cancelled"
    assert store.cancel(queued.id)
    assert store.claim("w2", LEASE) is None


def test_plan_waits_for_approval(store: SqlJobStore) -> None:
    store.enqueue(new_job("a", command=JobCommand.PLAN))
    job = _take(store, "w1")
    assert store.finish(job.id, "w1", JobState.WAITING_APPROVAL, result={"plan": "rename x"})
    assert store.claim("w1", LEASE) is None
    assert not store.approve("no-such-job")
    assert store.approve(job.id)
    assert not store.approve(job.id), "approve works once"
    again = _take(store, "w2")
    assert again is not None and again.id == job.id and again.attempts == 1
    assert again.result == {"plan": "rename x"}


def test_list_jobs_newest_first_with_filters(store: SqlJobStore, clock: FakeClock) -> None:
    ids: list[str] = []
    for i, repo in enumerate(["o/a", "o/b", "O/A"]):
        clock.advance(1)
        ids.append(store.enqueue(new_job(f"k{i}", repo=repo))[0].id)
    store.claim("w", LEASE)
    assert [j.id for j in store.list_jobs()] == ids[::-1]
    assert [j.id for j in store.list_jobs(limit=1)] == [ids[2]]
    assert [j.id for j in store.list_jobs(repo_full_name="o/a")] == [ids[2], ids[0]]
    assert [j.id for j in store.list_jobs(state=JobState.RUNNING)] == [ids[0]]
    counts = store.count_by_state()
    assert counts[JobState.QUEUED] == 2 and counts[JobState.RUNNING] == 1
    assert counts[JobState.DEAD] == 0


def test_timeline_records_transitions_and_progress(store: SqlJobStore) -> None:
    store.enqueue(new_job("a"))
    job = _take(store, "w1")
    store.add_event(job.id, "phase", "validating", {"checks": ["ruff", "pytest"]})
    store.finish(job.id, "w1", JobState.SUCCEEDED)
    events = store.events(job.id)
    assert [e.kind for e in events] == ["enqueued", "claimed", "phase", "finished"]
    assert events[2].data == {"checks": ["ruff", "pytest"]} and events[2].message == "validating"
    with pytest.raises(InputError, match="no job"):
        store.add_event("no-such-job", "phase", "x")


def test_store_survives_a_restart(store_url: str, clock: FakeClock) -> None:
    first = SqlJobStore(store_url, clock=clock)
    job, _ = first.enqueue(new_job("a"))
    first.close()
    second = SqlJobStore(store_url, clock=clock)
    assert second.get(job.id) == job
    assert second.enqueue(new_job("a"))[1] is False


def test_a_verdict_is_kept_in_a_finished_jobs_result_and_timeline(store: SqlJobStore) -> None:
    job = store.enqueue(new_job("k-verdict"))[0]
    assert not store.record_verdict(job.id, "accepted", "pull request #5 merged")  # not finished yet
    taken = _take(store, "w1")
    assert store.finish(taken.id, "w1", JobState.SUCCEEDED, result={"pr_number": 5, "branch": "b"})
    assert store.record_verdict(job.id, "accepted", "pull request #5 merged")
    result = stored(store, job.id).result
    assert (result["verdict"], result["verdict_source"], result["pr_number"]) == ("accepted", "pull request #5 merged", 5)
    assert store.events(job.id)[-1].kind == "verdict"
    assert not store.record_verdict("no-such-job", "rejected", "x")


def test_old_delivery_ids_are_pruned_and_recent_ones_still_refuse_replays(store: SqlJobStore, clock: FakeClock) -> None:
    assert store.record_delivery("old")
    clock.advance(31 * 24 * 3600)
    assert store.record_delivery("recent")
    assert store.prune_deliveries(dt.timedelta(days=30)) == 1
    assert not store.record_delivery("recent"), "a recent delivery is still a replay"
    assert store.record_delivery("old"), "a forgotten id is accepted again"
    assert store.prune_deliveries(dt.timedelta(days=30)) == 0
