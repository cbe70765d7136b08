"""Workers' learning reports over real HTTP: `learn sync --server` sends a worker's adapters, loaded
adapters and runs by verdict; the app keeps the latest per worker and its training page shows them."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import pytest

from diffusellm.app.admin.learn import learn_view
from diffusellm.app.metrics import Metrics
from diffusellm.app.reports import load_reports, reports_dir
from diffusellm.app.server import create_app
from diffusellm.app.settings import ServerSettings
from diffusellm.jobs.model import JobState
from diffusellm.jobs.store import SqlJobStore
from diffusellm.learn.outcomes import OutcomeStore
from diffusellm.pipeline.job import RunReport
from diffusellm.worker.remote import sync_server
from tests.jobs.support import AppServer, new_job, sqlite_store

TOKEN = "learning-report-test-token"


@pytest.fixture
def store(tmp_path: Path) -> SqlJobStore:
    return sqlite_store(tmp_path)


def _app(store: SqlJobStore, folder: Path | None) -> AppServer:
    return AppServer(create_app(store=store, server=ServerSettings(in_process_worker=False),
                                environ={"DIFFUSELLM_WORKER_TOKEN": TOKEN}, counters=Metrics(),
                                reports_dir=folder))


def _worker_state(root: Path) -> Path:
    state = root / "worker-state"
    adapter = state / "learn" / "adapters" / "20261201-100000"
    adapter.mkdir(parents=True)
    (adapter / "training.json").write_text(json.dumps({
        "date": "2026-12-01T10:00:00+00:00", "base_model": "Qwen/Qwen2.5-Coder-7B-Instruct", "examples": 2,
        "steps": 3, "first_loss": 2.0, "last_loss": 0.5, "losses": [2.0, 1.0, 0.5], "seconds": 12.0,
        "warnings": ["only 2 training example(s): below 20 an adapter mostly memorises them"],
        "settings": {"rank": 8}, "device": "cuda:0"}))
    base = {"repo": "/nowhere", "base_commit": "0" * 40, "status": "succeeded", "commit": "1" * 40,
            "changed_files": [], "changelog": None, "validation": {}, "spec": None, "summary_path": "",
            "patch_path": ""}
    OutcomeStore.in_state(state).record(RunReport.model_validate(base | {"job_id": "run-1", "branch": "b1"}))
    return state


def test_a_worker_reports_its_adapters_and_the_training_page_shows_them(store: SqlJobStore, tmp_path: Path) -> None:
    app_state = tmp_path / "app-state"
    job, _ = store.enqueue(new_job("gh", repo="octo/remote"))
    host = socket.gethostname()
    assert store.claim(f"{host}-4242-abcdef", 60) is not None, "worker ids start with the host name"
    store.finish(job.id, f"{host}-4242-abcdef", JobState.SUCCEEDED, result={"pr_number": 3})
    with _app(store, reports_dir(app_state)) as server:
        sync_server(_worker_state(tmp_path), server.url, TOKEN, ["/srv/adapters/20261201-100000"])
        refused = httpx.post(f"{server.url}/api/worker/learning", json={"worker_id": "x"},
                             headers={"Authorization": "Bearer wrong"})
        assert refused.status_code == 401
        too_many = httpx.post(f"{server.url}/api/worker/learning",
                              json={"worker_id": "x", "active_adapters": ["a"] * 21},
                              headers={"Authorization": f"Bearer {TOKEN}"})
        assert too_many.status_code == 422

    [(report, received)] = load_reports(reports_dir(app_state))
    assert report.worker_id == host and received.endswith("UTC")
    assert report.verdict_counts == {"pending": 1}
    view = learn_view(store, app_state, None, load_reports(reports_dir(app_state)))
    assert [(w.worker, w.active, w.adapters, w.runs) for w in view.workers] == [
        (host, "/srv/adapters/20261201-100000", 1, "pending: 1")]
    [row] = view.adapters
    assert row.folder == f"{host}: 20261201-100000" and row.loss == "2.000 → 0.500"
    assert row.warnings and row.warnings[0].startswith("only 2 training example(s)")
    assert view.charts["loss"] == {"x": [1, 2, 3], "series": [{"label": f"{host}: 20261201-100000",
                                                                "values": [2.0, 1.0, 0.5]}]}
    [repo] = view.repos
    assert (repo.repo, repo.adapter) == ("octo/remote", "/srv/adapters/20261201-100000")


def test_an_app_that_keeps_no_reports_does_not_fail_the_sync(store: SqlJobStore, tmp_path: Path) -> None:
    with _app(store, None) as server:
        assert sync_server(_worker_state(tmp_path), server.url, TOKEN) == []
        answer = httpx.post(f"{server.url}/api/worker/learning", json={"worker_id": "x"},
                            headers={"Authorization": f"Bearer {TOKEN}"})
        assert answer.status_code == 503 and "keeps no learning reports" in answer.text
