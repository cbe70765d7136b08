"""The app as a whole: settings, health, metrics, the reaper, the embedded worker, lifecycle hooks."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError

from diffusellm.app.metrics import Metrics
from diffusellm.app.server import create_app, metrics
from diffusellm.app.settings import ServerSettings, StoreSettings, WorkerSettings
from diffusellm.errors import ConfigError
from diffusellm.jobs.model import JobState
from diffusellm.jobs.store import SqlJobStore
from tests.jobs.fakes import FakeExecutor
from tests.jobs.support import new_job, sqlite_store, stored, wait_until

NO_WORKER = ServerSettings(in_process_worker=False)
FAST = StoreSettings(lease_seconds=2, heartbeat_seconds=0.3, reap_interval_seconds=0.1,
                     backoff_base_seconds=0)


@pytest.fixture
def store(tmp_path: Path) -> SqlJobStore:
    return sqlite_store(tmp_path)


def _sample(counters: Metrics, name: str, **labels: str) -> float | None:
    return counters.registry.get_sample_value(name, labels)


def test_settings_refuse_unknown_keys_and_a_heartbeat_slower_than_the_lease() -> None:
    with pytest.raises(ValidationError, match="extra"):
        ServerSettings.model_validate({"worker_token": "inline secrets are not allowed"})
    with pytest.raises(ValidationError, match="heartbeat_seconds"):
        StoreSettings(lease_seconds=10, heartbeat_seconds=10)
    assert WorkerSettings().server_url is None


def test_tokens_come_from_the_named_environment_variables() -> None:
    settings = ServerSettings(worker_token_env="MY_WORKER_TOKEN")
    assert settings.worker_token({"MY_WORKER_TOKEN": "t0k"}) == "t0k"
    assert settings.worker_token({"MY_WORKER_TOKEN": ""}) is None
    assert settings.worker_token({"DIFFUSELLM_WORKER_TOKEN": "other"}) is None
    assert ServerSettings().admin_token({"DIFFUSELLM_ADMIN_TOKEN": "adm"}) == "adm"


def test_embedded_worker_needs_an_executor(store: SqlJobStore) -> None:
    with pytest.raises(ConfigError, match="in_process_worker"):
        create_app(store=store, server=ServerSettings())


def test_healthz_reports_the_store(store: SqlJobStore) -> None:
    with TestClient(create_app(store=store, server=NO_WORKER, counters=Metrics())) as client:
        assert client.get("/healthz").json() == {"status": "ok"}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_healthz_and_metrics_when_the_database_is_down() -> None:
    down = SqlJobStore(f"postgresql://nobody@127.0.0.1:{_closed_port()}/jobs", migrate=False)
    with TestClient(create_app(store=down, server=NO_WORKER, counters=Metrics())) as client:
        health = client.get("/healthz")
        scrape = client.get("/metrics")
    assert health.status_code == 503 and health.json()["status"] == "unavailable"
    assert scrape.status_code == 200 and "diffusellm_store_up 0.0" in scrape.text


def test_metrics_count_jobs_and_what_routers_record(store: SqlJobStore) -> None:
    counters = Metrics()
    hooks = APIRouter()

    @hooks.post("/webhook-like")
    def webhook_like() -> dict[str, str]:
        counters.webhook_deliveries.labels(event="issues", outcome="enqueued").inc()
        return {"ok": "yes"}

    store.enqueue(new_job("a", repo="o/a"))
    store.enqueue(new_job("b", repo="o/b"))
    store.claim("w", 60)
    app = create_app(store=store, server=NO_WORKER, routers=[hooks], counters=counters)
    with TestClient(app) as client:
        client.post("/webhook-like")
        text = client.get("/metrics").text
    assert 'diffusellm_jobs{state="queued"} 1.0' in text
    assert 'diffusellm_jobs{state="running"} 1.0' in text
    assert 'diffusellm_jobs{state="dead"} 0.0' in text
    assert 'diffusellm_webhook_deliveries_total{event="issues",outcome="enqueued"} 1.0' in text
    assert "diffusellm_store_up 1.0" in text


def test_metrics_accessor_is_one_per_process() -> None:
    assert metrics() is metrics()


def test_reaper_requeues_jobs_of_silent_workers(store: SqlJobStore) -> None:
    counters = Metrics()
    job, _ = store.enqueue(new_job("a"))
    store.claim("vanished-worker", 0.2)
    app = create_app(store=store, server=NO_WORKER, store_settings=FAST, counters=counters)
    with TestClient(app):
        wait_until(lambda: stored(store, job.id).state is JobState.QUEUED, what="the reaper")
    assert _sample(counters, "diffusellm_jobs_reaped_total") == 1
    assert "vanished-worker" in (stored(store, job.id).error or "")


def test_embedded_worker_runs_jobs(store: SqlJobStore, tmp_path: Path) -> None:
    counters = Metrics()
    fake = FakeExecutor(tmp_path / "runs.log")
    app = create_app(store=store, server=ServerSettings(), store_settings=FAST, execute=fake,
                     counters=counters)
    jobs = [store.enqueue(new_job(f"k{i}", repo=f"o/r{i}"))[0] for i in range(2)]
    with TestClient(app):
        wait_until(lambda: all(stored(store, j.id).state is JobState.SUCCEEDED for j in jobs),
                   what="the embedded worker")
    assert [fake.starts(j.id) for j in jobs] == [1, 1]
    assert _sample(counters, "diffusellm_job_claims_total", via="in_process") == 2


def test_lifecycle_hooks_and_routers(store: SqlJobStore) -> None:
    calls: list[str] = []
    extra = APIRouter()

    @extra.get("/hello")
    def hello() -> dict[str, str]:
        return {"hello": "world"}

    async def async_start() -> None:
        calls.append("async start")

    app = create_app(store=store, server=NO_WORKER, routers=[extra], counters=Metrics(),
                     on_startup=[lambda: calls.append("start") and None, async_start],
                     on_shutdown=[lambda: calls.append("stop") and None])
    assert isinstance(app, FastAPI)
    with TestClient(app) as client:
        assert client.get("/hello").json() == {"hello": "world"}
        assert calls == ["start", "async start"]
    assert calls == ["start", "async start", "stop"]
