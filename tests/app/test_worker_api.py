"""The worker API: token checks, long-poll claims, and that only the lease holder may report."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from diffusellm.app.metrics import Metrics
from diffusellm.app.worker_api import WorkerApiConfig, worker_router
from diffusellm.jobs.model import Job, JobState
from diffusellm.jobs.store import SqlJobStore
from diffusellm.jobs.wire import ClaimResponse
from tests.jobs.support import new_job, sqlite_store, stored

TOKEN = "worker-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def store(tmp_path: Path) -> SqlJobStore:
    return sqlite_store(tmp_path, backoff_base_seconds=30)


@pytest.fixture
def counters() -> Metrics:
    return Metrics()


def _client(store: SqlJobStore, counters: Metrics, token: str | None = TOKEN) -> TestClient:
    app = FastAPI()
    config = WorkerApiConfig(token=token, token_env="DIFFUSELLM_WORKER_TOKEN", lease_seconds=30,
                             heartbeat_seconds=5, poll_seconds=0.05)
    app.include_router(worker_router(store, config, counters))
    return TestClient(app)


@pytest.fixture
def client(store: SqlJobStore, counters: Metrics) -> TestClient:
    return _client(store, counters)


def _claim(client: TestClient, worker: str = "w1", wait: float = 0) -> Job:
    response = client.post("/api/worker/claim", json={"worker_id": worker, "wait_seconds": wait},
                           headers=AUTH)
    assert response.status_code == 200, response.text
    return ClaimResponse.model_validate(response.json()).job


def test_without_a_configured_token_everything_is_refused(store: SqlJobStore,
                                                         counters: Metrics) -> None:
    client = _client(store, counters, token=None)
    response = client.post("/api/worker/claim", json={"worker_id": "w"}, headers=AUTH)
    assert response.status_code == 503
    assert "DIFFUSELLM_WORKER_TOKEN" in response.json()["detail"]


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": "Bearer "},
])
def test_missing_or_wrong_token_is_401(client: TestClient, store: SqlJobStore,
                                       headers: dict[str, str]) -> None:
    store.enqueue(new_job("k"))
    response = client.post("/api/worker/claim", json={"worker_id": "w"}, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert store.list_jobs(state=JobState.QUEUED), "nothing was claimed"


def test_claim_with_nothing_to_do_is_204(client: TestClient) -> None:
    response = client.post("/api/worker/claim", json={"worker_id": "w", "wait_seconds": 0.2},
                           headers=AUTH)
    assert response.status_code == 204 and response.content == b""


def test_claim_hands_out_a_leased_job(client: TestClient, store: SqlJobStore,
                                      counters: Metrics) -> None:
    created, _ = store.enqueue(new_job("k"))
    response = client.post("/api/worker/claim", json={"worker_id": "w1"}, headers=AUTH)
    claimed = ClaimResponse.model_validate(response.json())
    assert claimed.job.id == created.id and claimed.job.worker_id == "w1"
    assert (claimed.lease_seconds, claimed.heartbeat_seconds) == (30, 5)
    assert claimed.job.request == created.request
    assert counters.registry.get_sample_value("diffusellm_job_claims_total", {"via": "http"}) == 1


def test_long_poll_returns_a_job_enqueued_while_waiting(client: TestClient,
                                                        store: SqlJobStore) -> None:
    def enqueue_later() -> None:
        time.sleep(0.5)
        store.enqueue(new_job("late"))

    thread = threading.Thread(target=enqueue_later)
    thread.start()
    job = _claim(client, wait=30)
    thread.join()
    assert job.idempotency_key == "late"


def test_heartbeat_only_by_the_holder(client: TestClient, store: SqlJobStore) -> None:
    store.enqueue(new_job("k"))
    job = _claim(client)
    path = f"/api/worker/jobs/{job.id}/heartbeat"
    assert client.post(path, json={"worker_id": "w1"}, headers=AUTH).json() == {
        "lease_seconds": 30.0}
    refused = client.post(path, json={"worker_id": "w2"}, headers=AUTH)
    assert refused.status_code == 409 and "not running under worker w2" in refused.json()["detail"]
    unknown = client.post("/api/worker/jobs/nope/heartbeat", json={"worker_id": "w1"},
                          headers=AUTH)
    assert unknown.status_code == 409


def test_events_only_by_the_holder(client: TestClient, store: SqlJobStore) -> None:
    store.enqueue(new_job("k"))
    job = _claim(client)
    path = f"/api/worker/jobs/{job.id}/events"
    event = {"worker_id": "w1", "kind": "phase", "message": "validating", "data": {"n": 3}}
    assert client.post(path, json=event, headers=AUTH).status_code == 204
    assert client.post(path, json={**event, "worker_id": "w2"}, headers=AUTH).status_code == 409
    recorded = [e for e in store.events(job.id) if e.kind == "phase"]
    assert [(e.message, e.data) for e in recorded] == [("validating", {"n": 3})]


def test_finish_only_by_the_holder_and_only_once(client: TestClient, store: SqlJobStore,
                                                 counters: Metrics) -> None:
    store.enqueue(new_job("k"))
    job = _claim(client)
    path = f"/api/worker/jobs/{job.id}/finish"
    outcome = {"state": "succeeded", "result": {"pr_url": "https://github.com/o/r/pull/9"}}
    assert client.post(path, json={"worker_id": "w2", "outcome": outcome},
                       headers=AUTH).status_code == 409
    done = client.post(path, json={"worker_id": "w1", "outcome": outcome}, headers=AUTH)
    assert done.status_code == 200 and done.json() == {"state": "succeeded"}
    assert stored(store, job.id).result == {"pr_url": "https://github.com/o/r/pull/9"}
    assert client.post(path, json={"worker_id": "w1", "outcome": outcome},
                       headers=AUTH).status_code == 409
    assert counters.registry.get_sample_value("diffusellm_jobs_finished_total",
                                              {"state": "succeeded"}) == 1


def test_retryable_failure_is_queued_again_then_dead(client: TestClient,
                                                     store: SqlJobStore) -> None:
    store.enqueue(new_job("k", max_attempts=1))
    store.enqueue(new_job("k2", repo="o/other", max_attempts=2))
    failure = {"state": "failed", "error": "GitHub is down", "retryable": True}
    states: list[tuple[str, str]] = []
    for _ in range(2):
        job = _claim(client)
        answer = client.post(f"/api/worker/jobs/{job.id}/finish",
                             json={"worker_id": "w1", "outcome": failure}, headers=AUTH)
        states.append((job.idempotency_key, answer.json()["state"]))
    assert states == [("k", "dead"), ("k2", "queued")]


def test_malformed_bodies_are_422(client: TestClient, store: SqlJobStore) -> None:
    store.enqueue(new_job("k"))
    job = _claim(client)
    bad = [
        ("/api/worker/claim", {"worker_id": ""}),
        ("/api/worker/claim", {"worker_id": "w", "wait_seconds": 3600}),
        (f"/api/worker/jobs/{job.id}/finish", {"worker_id": "w1", "outcome": {"state": "dead"}}),
        (f"/api/worker/jobs/{job.id}/heartbeat", {"worker_id": "w1", "extra": 1}),
    ]
    for path, body in bad:
        assert client.post(path, json=body, headers=AUTH).status_code == 422, (path, body)
