"""Remote workers over real HTTP: exactly-once execution, a SIGKILLed worker, tokens, lease holders."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from diffusellm.app.metrics import Metrics
from diffusellm.app.reports import load_reports
from diffusellm.app.server import create_app
from diffusellm.app.settings import ServerSettings, StoreSettings
from diffusellm.errors import ConfigError
from diffusellm.jobs.model import JobState
from diffusellm.jobs.store import SqlJobStore
from diffusellm.jobs.wire import Outcome
from diffusellm.learn.outcomes import OutcomeStore
from diffusellm.learn.verdicts import sync_forge
from diffusellm.pipeline.job import RunReport
from diffusellm.worker.loop import run_worker
from diffusellm.worker.remote import HttpSource, load_executor
from tests.jobs.fakes import LOG_ENV, FakeExecutor
from tests.jobs.support import AppServer, new_job, sqlite_store, stored, wait_until

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "remote-worker-test-token"
FAST = StoreSettings(lease_seconds=1.5, heartbeat_seconds=0.3, reap_interval_seconds=0.2,
                     backoff_base_seconds=0)


@pytest.fixture
def store(tmp_path: Path) -> SqlJobStore:
    return sqlite_store(tmp_path, backoff_base_seconds=0)


@pytest.fixture
def fake(tmp_path: Path) -> FakeExecutor:
    return FakeExecutor(tmp_path / "executions.log")


def _app_server(store: SqlJobStore) -> AppServer:
    app = create_app(store=store, server=ServerSettings(in_process_worker=False),
                     store_settings=FAST, environ={"DIFFUSELLM_WORKER_TOKEN": TOKEN},
                     counters=Metrics())
    return AppServer(app)


@pytest.fixture
def server(store: SqlJobStore) -> Iterator[AppServer]:
    with _app_server(store) as running:
        yield running


def _source(url: str, token: str = TOKEN) -> HttpSource:
    return HttpSource(url, token, poll_timeout_seconds=1, retry_base_seconds=0.05,
                      retry_max_seconds=0.2)


def _worker_process(url: str, worker_id: str, log: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "DIFFUSELLM_WORKER_TOKEN": TOKEN, LOG_ENV: str(log),
           "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "diffusellm.worker.remote", "--server", url,
               "--execute", "tests.jobs.fakes:fake_executor_from_env", "--poll-timeout", "1",
               "--worker-id", worker_id, "--log-level", "warning", *extra]
    return subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)


def test_each_job_runs_exactly_once(server: AppServer, store: SqlJobStore,
                                    fake: FakeExecutor) -> None:
    stop = threading.Event()
    workers = [threading.Thread(target=run_worker, args=(_source(server.url), fake),
                                kwargs={"stop": stop, "worker_id": f"w{i}"}) for i in range(2)]
    for worker in workers:
        worker.start()
    jobs = [store.enqueue(new_job(f"k{i}", repo=f"o/r{i}"))[0] for i in range(6)]
    try:
        wait_until(lambda: all(stored(store, j.id).state is JobState.SUCCEEDED for j in jobs),
                   what="the remote workers")
    finally:
        stop.set()
        for worker in workers:
            worker.join(30)
    assert [fake.starts(j.id) for j in jobs] == [1] * 6
    for job in jobs:
        done = stored(store, job.id)
        assert done.attempts == 1 and done.result["title"] == "Add a flag"
        assert "progress" in [e.kind for e in store.events(job.id)], "events travel over HTTP"


def test_killed_worker_job_is_completed_once_by_another(server: AppServer, store: SqlJobStore,
                                                        fake: FakeExecutor) -> None:
    job, _ = store.enqueue(new_job("k", body="hang-first"))
    doomed = _worker_process(server.url, "doomed", fake.log_path)
    try:
        wait_until(lambda: fake.starts(job.id) == 1, 60, "the first worker to start the job")
        time.sleep(FAST.lease_seconds * 1.5)
        held = stored(store, job.id)
        assert held.state is JobState.RUNNING and held.worker_id == "doomed", (
            "heartbeats from the worker process keep its lease")
    finally:
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait(30)
    survivor = _worker_process(server.url, "survivor", fake.log_path, "--max-jobs", "1")
    _, errors = survivor.communicate(timeout=120)
    assert survivor.returncode == 0, errors
    final = stored(store, job.id)
    assert final.state is JobState.SUCCEEDED and final.worker_id == "survivor"
    assert final.attempts == 2 and final.result["attempt"] == 2
    assert (fake.starts(job.id), fake.dones(job.id)) == (2, 1)
    assert "reaped" in [e.kind for e in store.events(job.id)]


def test_sigterm_lets_the_current_job_finish(server: AppServer, store: SqlJobStore,
                                            fake: FakeExecutor) -> None:
    job, _ = store.enqueue(new_job("k", body="sleep 2"))
    worker = _worker_process(server.url, "w", fake.log_path)
    wait_until(lambda: fake.starts(job.id) == 1, 60, "the worker to start the job")
    worker.send_signal(signal.SIGTERM)
    _, errors = worker.communicate(timeout=60)
    assert worker.returncode == 0, errors
    assert stored(store, job.id).state is JobState.SUCCEEDED and fake.dones(job.id) == 1


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-the-token"}])
def test_missing_or_wrong_token_is_401(server: AppServer, headers: dict[str, str]) -> None:
    response = httpx.post(f"{server.url}/api/worker/claim", json={"worker_id": "w"},
                          headers=headers)
    assert response.status_code == 401


def test_worker_with_a_wrong_token_stops_with_a_hint(server: AppServer, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="refused the worker's token") as caught:
        _source(server.url, token="not-the-token").claim("w", threading.Event())
    assert "token" in caught.value.hint
    env = {**os.environ, "DIFFUSELLM_WORKER_TOKEN": "not-the-token", "PYTHONPATH": str(ROOT),
           LOG_ENV: str(tmp_path / "never.log")}
    done = subprocess.run(
        [sys.executable, "-m", "diffusellm.worker.remote", "--server", server.url,
         "--execute", "tests.jobs.fakes:fake_executor_from_env"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and "refused the worker's token" in done.stderr


def test_only_the_lease_holder_may_report(server: AppServer, store: SqlJobStore) -> None:
    store.enqueue(new_job("k"))
    holder, intruder = _source(server.url), _source(server.url)
    job = holder.claim("holder", threading.Event())
    assert job is not None and holder.heartbeat_seconds == FAST.heartbeat_seconds
    done = Outcome(state="succeeded", result={"by": "intruder"})
    assert not intruder.finish(job.id, "intruder", done)
    assert not intruder.heartbeat(job.id, "intruder")
    raw = httpx.post(f"{server.url}/api/worker/jobs/{job.id}/finish",
                     json={"worker_id": "intruder", "outcome": done.model_dump()},
                     headers={"Authorization": f"Bearer {TOKEN}"})
    assert raw.status_code == 409
    assert holder.heartbeat(job.id, "holder")
    assert holder.finish(job.id, "holder", Outcome(state="succeeded", result={"by": "holder"}))
    assert stored(store, job.id).result == {"by": "holder"}


def test_a_worker_takes_the_verdicts_the_app_recorded_over_http(
    server: AppServer, store: SqlJobStore, tmp_path: Path
) -> None:
    job = store.enqueue(new_job("v"))[0]
    open_pr = store.enqueue(new_job("o", repo="octo/other"))[0]
    source = _source(server.url)
    for taken_id in (job.id, open_pr.id):
        taken = source.claim("w", threading.Event())
        assert taken is not None and taken.id == taken_id
        assert source.finish(taken.id, "w", Outcome(state="succeeded", result={"pr_number": 7}))
    assert store.record_verdict(job.id, "accepted", "pull request #7 merged")
    assert source.verdicts([job.id, open_pr.id, "unknown"]) == {job.id: ("accepted", "pull request #7 merged")}

    memory = OutcomeStore.in_state(tmp_path / "worker-state")
    base: dict[str, object] = {"repo": "/nowhere", "base_commit": "0" * 40, "status": "succeeded", "commit": "1" * 40,
            "changed_files": [], "changelog": None, "validation": {}, "spec": None, "summary_path": "",
            "patch_path": ""}
    memory.record(RunReport.model_validate(base | {"job_id": "run-1", "branch": "b1"}), forge_job=job.id)
    memory.record(RunReport.model_validate(base | {"job_id": "run-2", "branch": "b2"}), forge_job=open_pr.id)
    decided = sync_forge(memory, source.verdicts)
    assert [(o.job_id, o.verdict, o.verdict_source) for o in decided] == [("run-1", "accepted", "pull request #7 merged")]
    assert memory.get("run-2").verdict == "pending"
    wrong = _source(server.url, token="nope")
    with pytest.raises(ConfigError, match="refused the worker's token"):
        wrong.verdicts([job.id])


def test_a_worker_sends_its_learning_to_the_app_without_being_asked(store: SqlJobStore, fake: FakeExecutor,
                                                                     tmp_path: Path) -> None:
    """`diffusellm worker` passes its state folder: the training page shows the worker's runs and adapters
    from its start and after each job, with the verdicts the app recorded taken into its memory."""
    earlier = store.enqueue(new_job("earlier"))[0]
    assert store.claim("gpu-7", 60) is not None
    store.finish(earlier.id, "gpu-7", JobState.SUCCEEDED, result={"pr_number": 3})
    assert store.record_verdict(earlier.id, "accepted", "pull request #3 merged")
    state = tmp_path / "worker-state"
    base: dict[str, object] = {"repo": "/nowhere", "base_commit": "0" * 40, "status": "succeeded", "commit": "1" * 40,
            "changed_files": [], "changelog": None, "validation": {}, "spec": None, "summary_path": "",
            "patch_path": "", "job_id": "run-1", "branch": "b1"}
    OutcomeStore.in_state(state).record(RunReport.model_validate(base), forge_job=earlier.id)
    job = store.enqueue(new_job("now"))[0]
    reports = tmp_path / "app-reports"
    app = create_app(store=store, server=ServerSettings(in_process_worker=False), store_settings=FAST,
                     environ={"DIFFUSELLM_WORKER_TOKEN": TOKEN}, counters=Metrics(), reports_dir=reports)
    with AppServer(app) as server:
        worker = _worker_process(server.url, "gpu-7", fake.log_path, "--max-jobs", "1",
                                 "--state-dir", str(state), "--adapter", "/models/adapter-1")
        _, errors = worker.communicate(timeout=120)
    assert worker.returncode == 0, errors
    assert stored(store, job.id).state is JobState.SUCCEEDED
    [(report, _)] = load_reports(reports)
    assert report.worker_id == "gpu-7" and report.active_adapters == ["/models/adapter-1"]
    assert report.verdict_counts.get("accepted") == 1, "the app's verdict reached the worker's memory"
    assert OutcomeStore.in_state(state).get("run-1").verdict == "accepted"


def test_worker_started_before_the_app_waits_for_it(store: SqlJobStore,
                                                    fake: FakeExecutor) -> None:
    job, _ = store.enqueue(new_job("k"))
    server = _app_server(store)  # the port is reserved but nothing answers yet
    stop = threading.Event()
    worker = threading.Thread(target=run_worker, args=(_source(server.url), fake),
                              kwargs={"stop": stop, "max_jobs": 1})
    worker.start()
    time.sleep(0.5)
    assert fake.starts(job.id) == 0
    with server:
        worker.join(60)
    stop.set()
    assert not worker.is_alive()
    assert stored(store, job.id).state is JobState.SUCCEEDED


def test_executor_specs_are_checked() -> None:
    with pytest.raises(ConfigError, match="MODULE:FACTORY"):
        load_executor("no_colon_here")
    with pytest.raises(ConfigError, match="no_such_module"):
        load_executor("no_such_module:factory")
    with pytest.raises(ConfigError, match="nothing_here"):
        load_executor("tests.jobs.fakes:nothing_here")


@pytest.mark.parametrize("url", ["http://bot.example.org", "http://10.0.0.5:5001", "http://[2001:db8::1]/",
                                 "ftp://127.0.0.1/", "127.0.0.1:5001"])
def test_the_token_never_goes_in_clear_off_loopback(url: str) -> None:
    with pytest.raises(ConfigError, match="in clear|not an http"):
        HttpSource(url, "tok")


def test_a_worker_pointed_at_plain_http_elsewhere_exits_2_saying_why() -> None:
    done = subprocess.run([sys.executable, "-m", "diffusellm.worker.remote", "--server", "http://bot.example.org",
                           "--execute", "diffusellm.worker.execute:build_executor"],
                          env={**os.environ, "DIFFUSELLM_WORKER_TOKEN": "tok"}, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and "token would cross the network in clear" in done.stderr, done.stderr


@pytest.mark.parametrize("url", ["https://bot.example.org", "http://127.0.0.1:5001", "http://localhost:5001",
                                 "http://[::1]:5001", "http://127.8.9.10"])
def test_https_anywhere_and_plain_http_on_loopback_are_accepted(url: str) -> None:
    HttpSource(url, "tok").close()


def test_plain_http_on_a_private_network_needs_saying_so() -> None:
    HttpSource("http://app:5001", "tok", allow_plain_http=True).close()
    with pytest.raises(ConfigError, match="in clear") as refused:
        HttpSource("http://app:5001", "tok")
    assert "--allow-plain-http" in refused.value.hint
