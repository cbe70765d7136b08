"""The job store under contention: many threads and two app instances on one database."""

from __future__ import annotations

from collections import Counter

from diffusellm.jobs.model import Job, JobState
from diffusellm.jobs.store import SqlJobStore
from tests.jobs.support import new_job, run_in_threads

LEASE = 60.0
THREADS = 8


def _drain(store: SqlJobStore, worker: str) -> list[str]:
    """Claim until nothing is left; the jobs stay running so nobody else may take them."""
    taken: list[str] = []
    while (job := store.claim(worker, LEASE)) is not None:
        taken.append(job.id)
    return taken


def test_each_job_is_claimed_exactly_once(store_url: str) -> None:
    # Two store objects on one database behave like two app instances.
    instances = [SqlJobStore(store_url), SqlJobStore(store_url)]
    ids = {instances[0].enqueue(new_job(f"k{i}", repo=f"o/r{i}"))[0].id for i in range(20)}

    results = run_in_threads(THREADS, lambda i: _drain(instances[i % 2], f"w{i}"))

    claims = Counter(job_id for taken in results for job_id in taken)  # type: ignore[union-attr]
    assert set(claims) == ids
    assert set(claims.values()) == {1}
    running = instances[1].list_jobs(state=JobState.RUNNING)
    assert len(running) == 20 and all(j.attempts == 1 for j in running)


def test_concurrent_enqueues_of_one_key_make_one_job(store_url: str) -> None:
    store = SqlJobStore(store_url)

    results = run_in_threads(50, lambda _i: store.enqueue(new_job("same-issue-same-text")))

    pairs: list[tuple[Job, bool]] = results  # type: ignore[assignment]
    assert sum(created for _, created in pairs) == 1
    assert len({job.id for job, _ in pairs}) == 1
    assert len(store.list_jobs()) == 1


def test_concurrent_replays_of_one_delivery_are_seen_once(store_url: str) -> None:
    store = SqlJobStore(store_url)

    results = run_in_threads(20, lambda _i: store.record_delivery("delivery-1"))

    assert results.count(True) == 1 and results.count(False) == 19


def test_one_running_job_per_repository_under_contention(store_url: str) -> None:
    instances = [SqlJobStore(store_url), SqlJobStore(store_url)]
    for i in range(10):
        instances[0].enqueue(new_job(f"same{i}", repo="octo/busy"))
    others = {instances[0].enqueue(new_job(f"other{i}", repo=f"octo/r{i}"))[0].id
              for i in range(6)}

    results = run_in_threads(THREADS, lambda i: _drain(instances[i % 2], f"w{i}"))

    taken = [job_id for batch in results for job_id in batch]  # type: ignore[union-attr]
    running = instances[0].list_jobs(state=JobState.RUNNING)
    assert len(taken) == len(set(taken)) == 7
    assert {j.id for j in running} == set(taken)
    assert [j.repo_key for j in running].count("octo/busy") == 1
    assert others <= set(taken)
