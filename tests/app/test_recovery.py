"""Inbox recovery: in the background after start-up, retried with back-off, dead with a reason, counted."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import requests
from fastapi.testclient import TestClient

from diffusellm.app.inbox import SpoolInbox
from diffusellm.app.main import build_app
from diffusellm.app.metrics import InboxCollector, Metrics
from diffusellm.app.recovery import InboxRecovery, InboxTriage
from diffusellm.app.router import EventRouter, WebhookEvent
from diffusellm.app.server import create_app, metrics
from diffusellm.app.settings import ServerSettings, StoreSettings
from diffusellm.app.webhooks import PATH
from diffusellm.config import Settings
from diffusellm.forge.base import ForgeError
from diffusellm.jobs.store import SqlJobStore
from tests.fakes.webhook_payloads import EXAMPLES, delivery
from tests.jobs.support import new_job, sqlite_store, wait_until

NO_WORKER = ServerSettings(in_process_worker=False)


class Handler:
    """An `issues` handler scripted to fail a number of times with a given error."""

    def __init__(self, error: Exception | None = None, failures: int = 0) -> None:
        self.error, self.failures, self.calls = error, failures, 0
        self.release = threading.Event()
        self.release.set()

    def __call__(self, event: WebhookEvent) -> None:
        self.calls += 1
        assert self.release.wait(30), "never released"
        if self.error is not None and self.calls <= self.failures:
            raise self.error


def _bench(tmp_path: Path, handler: Handler, *, max_attempts: int = 3) -> tuple[InboxTriage, SpoolInbox,
                                                                                 Metrics, list[float]]:
    events = EventRouter()
    events.add("issues", handler)
    inbox, counters, now = SpoolInbox(tmp_path / "inbox"), Metrics(), [1000.0]
    triage = InboxTriage(sqlite_store(tmp_path), events, inbox, counters, retry_base_s=10,
                         max_attempts=max_attempts, clock=lambda: now[0])
    return triage, inbox, counters, now


def _event(n: int) -> WebhookEvent:
    return WebhookEvent("issues", f"d-{n}", {"action": "labeled", "n": n})


def _outage() -> Exception:
    try:
        requests.get("http://127.0.0.1:1/", timeout=5)
    except requests.RequestException as exc:
        return exc
    raise AssertionError("port 1 answered")


def test_an_outage_is_retried_with_back_off_then_the_delivery_is_dead(tmp_path: Path) -> None:
    triage, inbox, counters, now = _bench(tmp_path, Handler(_outage(), failures=99), max_attempts=3)
    inbox.put(_event(1))
    assert triage.recover() == 0
    status = inbox.status("d-1")
    assert status is not None and (status.attempts, status.retry_at) == (1, 1010.0)
    assert status.error == "GitHub unreachable: connection refused (127.0.0.1)"
    assert triage.due() == []
    now[0] = 1010.0
    triage.recover()
    status = inbox.status("d-1")
    assert status is not None and (status.attempts, status.retry_at) == (2, 1030.0)  # doubled
    now[0] = 1030.0
    triage.recover()
    status = inbox.status("d-1")
    assert status is not None and status.dead and status.error.startswith("gave up after 3 attempts: GitHub")
    now[0] = 10**9
    assert triage.due() == []
    summary = inbox.summary(now[0])
    assert (summary.waiting, summary.retrying, summary.dead) == (0, 0, 1)
    assert counters.registry.get_sample_value("diffusellm_webhook_triage_total",
                                              {"event": "issues.labeled", "outcome": "dead"}) == 1


def test_a_retryable_refusal_is_retried_and_then_triaged(tmp_path: Path) -> None:
    handler = Handler(ForgeError("GitHub: reading the issue failed: 502 Bad Gateway", retryable=True), failures=1)
    triage, inbox, _, now = _bench(tmp_path, handler)
    inbox.put(_event(1))
    triage.recover()
    now[0] += 10
    assert triage.recover() == 1 and inbox.pending() == [] and inbox.status("d-1") is None


@pytest.mark.parametrize("error", [ForgeError("GitHub: reading the issue failed: 404 Not Found"),
                                   KeyError("issue")])
def test_an_error_that_will_not_change_is_dead_at_once(tmp_path: Path, error: Exception) -> None:
    triage, inbox, _, _ = _bench(tmp_path, Handler(error, failures=1))
    inbox.put(_event(1))
    triage.recover()
    status = inbox.status("d-1")
    assert status is not None and status.dead and status.attempts == 1
    assert ("404 Not Found" in status.error) if isinstance(error, ForgeError) else ("KeyError" in status.error)


def test_one_delivery_is_never_triaged_twice_at_once(tmp_path: Path) -> None:
    handler = Handler()
    handler.release.clear()
    triage, inbox, _, _ = _bench(tmp_path, handler)
    inbox.put(_event(1))
    first = threading.Thread(target=triage.recover)
    first.start()
    wait_until(lambda: handler.calls == 1, what="the first triage")
    assert triage.process(_event(1)) == "busy"
    handler.release.set()
    first.join(10)
    assert handler.calls == 1 and inbox.pending() == []


def test_a_delivery_triaged_while_the_inbox_is_listed_is_not_pending(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Recovery deletes files while the metrics scrape lists the folder; that is no error."""
    inbox = SpoolInbox(tmp_path / "inbox")
    for n in range(3):
        inbox.put(_event(n))
    real_stat = Path.stat

    def stat_after_triage(path: Path, **kwargs: bool) -> object:
        if path.name == "d-1.json":
            inbox.done("d-1")
        return real_stat(path, **kwargs)

    monkeypatch.setattr(Path, "stat", stat_after_triage)
    assert [event.delivery_id for event in inbox.pending()] == ["d-0", "d-2"]
    assert inbox.summary().waiting == 2


def test_the_port_answers_at_once_with_a_full_inbox(tmp_path: Path) -> None:
    handler = Handler()
    handler.release.clear()  # triage hangs, as it does while GitHub does not answer
    triage, inbox, counters, _ = _bench(tmp_path, handler)
    for n in range(50):
        inbox.put(_event(n))
    store = sqlite_store(tmp_path / "app")
    app = create_app(store=store, server=NO_WORKER, counters=counters,
                     services=[InboxRecovery(triage, 0.05)], collectors=[InboxCollector(inbox.summary)])
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        wait_until(lambda: handler.calls == 1, what="recovery to start in the background")
        text = client.get("/metrics").text
        assert 'diffusellm_inbox_deliveries{state="waiting"} 50.0' in text
        handler.release.set()
        wait_until(lambda: inbox.pending() == [], what="the inbox to drain")
    assert handler.calls == 50


def test_every_declared_metric_is_recorded(tmp_path: Path) -> None:
    """Walks the registry: a metric nothing records would show here as a family with no sample."""
    env = {"WEBHOOK_SECRET": "s", "DIFFUSELLM_WORKER_TOKEN": "w"}  # no APP_ID: triage is retried
    settings = Settings(state_dir=tmp_path / "state",
                        server=ServerSettings(in_process_worker=False, inbox_retry_seconds=0.05),
                        store=StoreSettings(url=f"sqlite:///{tmp_path / 'jobs.sqlite'}", lease_seconds=0.5,
                                            heartbeat_seconds=0.1, reap_interval_seconds=0.05))
    app = build_app(settings, env)
    store = SqlJobStore(settings.store.url)
    store.enqueue(new_job("a", repo="o/a"))
    store.enqueue(new_job("b", repo="o/b"))
    counters = metrics()
    auth = {"Authorization": "Bearer w"}
    payload = (EXAMPLES / "issues" / "labeled.payload.json").read_text(encoding="utf-8")
    with TestClient(app) as client:
        body, headers = delivery("issues", json.loads(payload), "s")
        assert client.post(PATH, content=body, headers=headers).status_code == 202
        claimed = client.post("/api/worker/claim", json={"worker_id": "w1", "wait_seconds": 0}, headers=auth)
        job_id = claimed.json()["job"]["id"]
        finished = client.post(f"/api/worker/jobs/{job_id}/finish", headers=auth,
                               json={"worker_id": "w1", "outcome": {"state": "succeeded", "result": {}}})
        assert finished.status_code == 200
        client.post("/api/worker/claim", json={"worker_id": "gone", "wait_seconds": 0}, headers=auth)
        wait_until(lambda: (counters.registry.get_sample_value("diffusellm_jobs_reaped_total") or 0) > 0,
                   what="the reaper")
        text = client.get("/metrics").text
    silent = [m.name for m in counters.registry.collect() if not any(s.value > 0 for s in m.samples)]
    assert silent == []
    for family in ("diffusellm_jobs", "diffusellm_store_up", "diffusellm_inbox_deliveries",
                   "diffusellm_inbox_oldest_seconds", "diffusellm_webhook_deliveries_total",
                   "diffusellm_webhook_triage_total"):
        assert f"\n{family}" in text or text.startswith(family), family
