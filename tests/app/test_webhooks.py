"""Webhook receiver: HMAC checks, replay dedupe under concurrency, durable inbox, event routing."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import BackgroundTasks, FastAPI
from fastapi.testclient import TestClient

from diffusellm.app.inbox import SpoolInbox
from diffusellm.app.router import EventRouter, WebhookEvent
from diffusellm.app.triage import TriageContext, register
from diffusellm.app.webhooks import PATH, recover, signature_for, verify_signature, webhook_router
from diffusellm.forge.base import Issue
from diffusellm.forge.github_settings import GitHubSettings
from diffusellm.jobs.model import JobStore
from diffusellm.jobs.store import SqlJobStore
from tests.fakes.forge import FakeForge
from tests.fakes.job_store import FakeJobStore
from tests.fakes.webhook_payloads import EXAMPLES, delivery

SECRET = "test-webhook-secret"
# https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries#testing-the-webhook-payload-validation
VECTOR_SECRET = "It's a Secret to Everybody"
VECTOR_BODY = b"Hello, World!"
VECTOR_SIG = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def _ping() -> dict[str, Any]:
    return json.loads((EXAMPLES / "ping" / "payload.json").read_text(encoding="utf-8"))


class Recorder:
    """Counts the events handlers saw."""

    def __init__(self) -> None:
        self.seen: list[WebhookEvent] = []

    def __call__(self, event: WebhookEvent) -> None:
        self.seen.append(event)


def _app(store: JobStore, inbox: SpoolInbox, events: EventRouter, secret: str | None = SECRET,
         schedule: Callable[[BackgroundTasks, Callable[[], None]], None] | None = None) -> FastAPI:
    app = FastAPI()
    app.include_router(webhook_router(store=store, secret=secret, events=events, inbox=inbox,
                                      schedule=schedule))
    return app


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def parts(tmp_path: Path, recorder: Recorder) -> tuple[FakeJobStore, SpoolInbox, EventRouter]:
    events = EventRouter()
    events.add("ping", recorder)
    events.add("issues", recorder)
    return FakeJobStore(), SpoolInbox(tmp_path / "inbox"), events


def test_githubs_documented_test_vector_passes() -> None:
    assert signature_for(VECTOR_SECRET, VECTOR_BODY) == VECTOR_SIG
    assert verify_signature(VECTOR_SECRET, VECTOR_BODY, VECTOR_SIG)
    assert not verify_signature(VECTOR_SECRET, VECTOR_BODY + b" ", VECTOR_SIG)
    assert not verify_signature("", VECTOR_BODY, VECTOR_SIG)


def test_test_vector_gets_past_the_signature_check_over_http(tmp_path: Path,
                                                             recorder: Recorder) -> None:
    events = EventRouter()
    events.add("ping", recorder)
    app = _app(FakeJobStore(), SpoolInbox(tmp_path / "inbox"), events, secret=VECTOR_SECRET)
    headers = {"X-Hub-Signature-256": VECTOR_SIG, "X-GitHub-Event": "ping",
               "X-GitHub-Delivery": "d-1"}
    answer = TestClient(app).post(PATH, content=VECTOR_BODY, headers=headers)
    # Accepted by the HMAC check; refused afterwards only because "Hello, World!" is not JSON.
    assert answer.status_code == 400 and "JSON" in answer.json()["reason"]


def test_signed_delivery_is_accepted_recorded_and_routed(
    parts: tuple[FakeJobStore, SpoolInbox, EventRouter], recorder: Recorder,
) -> None:
    store, inbox, events = parts
    body, headers = delivery("ping", _ping(), SECRET, delivery_id="abc-1")
    answer = TestClient(_app(store, inbox, events)).post(PATH, content=body, headers=headers)
    assert answer.status_code == 202 and answer.json()["status"] == "accepted"
    assert store.deliveries == {"abc-1"}
    assert [e.name for e in recorder.seen] == ["ping"]
    assert inbox.pending() == [], "a triaged delivery leaves the inbox"


@pytest.mark.parametrize(("headers", "status", "reason"), [
    ({"X-Hub-Signature-256": "sha256=" + "0" * 64}, 401, "does not match"),
    ({}, 401, "missing X-Hub-Signature-256"),
    ({"X-Hub-Signature": "sha1=" + "0" * 40}, 401, "sha1"),
    ({"X-Hub-Signature-256": "sha1=" + "0" * 40}, 401, "does not match"),
])
def test_bad_signatures_are_refused_and_nothing_is_kept(
    parts: tuple[FakeJobStore, SpoolInbox, EventRouter], recorder: Recorder,
    headers: dict[str, str], status: int, reason: str,
) -> None:
    store, inbox, events = parts
    body = json.dumps(_ping()).encode()
    sent = {"X-GitHub-Event": "ping", "X-GitHub-Delivery": "d-2", **headers}
    answer = TestClient(_app(store, inbox, events)).post(PATH, content=body, headers=sent)
    assert answer.status_code == status and reason in answer.json()["reason"]
    assert not store.deliveries and not recorder.seen and inbox.pending() == []


def test_sha1_signature_alone_is_refused_even_when_correct(
    parts: tuple[FakeJobStore, SpoolInbox, EventRouter], recorder: Recorder,
) -> None:
    store, inbox, events = parts
    body, headers = delivery("ping", _ping(), SECRET)
    del headers["X-Hub-Signature-256"]
    answer = TestClient(_app(store, inbox, events)).post(PATH, content=body, headers=headers)
    assert answer.status_code == 401 and not recorder.seen


@pytest.mark.parametrize("secret", [None, ""])
def test_without_a_configured_secret_everything_is_refused(
    parts: tuple[FakeJobStore, SpoolInbox, EventRouter], recorder: Recorder, secret: str | None,
) -> None:
    store, inbox, events = parts
    body = json.dumps(_ping()).encode()
    unkeyed = "sha256=" + hmac.new(b"", body, hashlib.sha256).hexdigest()
    headers = {"X-GitHub-Event": "ping", "X-GitHub-Delivery": "d-3",
               "X-Hub-Signature-256": unkeyed}
    answer = TestClient(_app(store, inbox, events, secret=secret)).post(PATH, content=body,
                                                                        headers=headers)
    assert answer.status_code == 403 and "WEBHOOK_SECRET" in answer.json()["reason"]
    assert not recorder.seen and not store.deliveries


def _forgeries(body: bytes, count: int) -> list[str]:
    """Signatures an attacker might try: other keys, one changed digit, truncations, sha1."""
    rng = random.Random(1234)
    good = signature_for(SECRET, body)
    made: list[str] = []
    for i in range(count):
        kind = i % 6
        if kind == 0:
            made.append(signature_for(f"guess-{rng.random()}", body))
        elif kind == 1:
            pos = rng.randrange(7, len(good))
            digit = "0123456789abcdef".replace(good[pos], "")[rng.randrange(15)]
            made.append(good[:pos] + digit + good[pos + 1:])
        elif kind == 2:
            made.append(good[: rng.randrange(7, len(good))])
        elif kind == 3:
            made.append("sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest())
        elif kind == 4:
            made.append(signature_for(SECRET, body + b" "))
        else:
            made.append("sha256=" + good[7:].upper())
    return made


def test_a_thousand_forged_deliveries_are_all_refused(
    parts: tuple[FakeJobStore, SpoolInbox, EventRouter], recorder: Recorder,
) -> None:
    store, inbox, events = parts
    client = TestClient(_app(store, inbox, events))
    body = json.dumps(_ping()).encode()
    accepted = 0
    for i, sig in enumerate(_forgeries(body, 1000)):
        headers = {"X-GitHub-Event": "ping", "X-GitHub-Delivery": f"forged-{i}",
                   "X-Hub-Signature-256": sig}
        accepted += client.post(PATH, content=body, headers=headers).status_code == 202
    assert accepted == 0
    assert not recorder.seen and not store.deliveries and inbox.pending() == []


def _labelled_issue_payload() -> dict[str, Any]:
    payload = json.loads((EXAMPLES / "issues" / "labeled.payload.json").read_text("utf-8"))
    payload["label"]["name"] = "diffusellm"
    payload["installation"] = {"id": 7}
    payload["sender"]["login"] = "maintainer"
    return payload


def _triage_app(tmp_path: Path, store: JobStore, forge: FakeForge) -> FastAPI:
    ctx = TriageContext(store=store, settings=GitHubSettings(), forges=lambda repo, inst: forge)
    events = register(EventRouter(), ctx)
    return _app(store, SpoolInbox(tmp_path / "inbox"), events)


@pytest.mark.parametrize("kind", ["fake", "sqlite"])
def test_one_delivery_replayed_a_thousand_times_fifty_at_once_makes_one_job(
    tmp_path: Path, kind: str,
) -> None:
    store = FakeJobStore() if kind == "fake" else SqlJobStore(f"sqlite:///{tmp_path / 'j.db'}")
    payload = _labelled_issue_payload()
    forge = FakeForge(repo_full_name=payload["repository"]["full_name"],
                      roles={"maintainer": "write"})
    forge.issues[1] = Issue(1, payload["issue"]["title"], payload["issue"]["body"] or "",
                            "Codertocat", False)
    app = _triage_app(tmp_path, store, forge)
    body, headers = delivery("issues", payload, SECRET, delivery_id="replayed-1")

    async def storm() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            answers: list[httpx.Response] = []
            for _ in range(20):
                answers += await asyncio.gather(
                    *(client.post(PATH, content=body, headers=headers) for _ in range(50)))
            return answers

    answers = asyncio.run(storm())
    assert len(answers) == 1000 and all(a.status_code == 202 for a in answers)
    statuses = [a.json()["status"] for a in answers]
    assert statuses.count("accepted") == 1 and statuses.count("duplicate") == 999
    (job,) = store.list_jobs()
    assert job.request.sender == "maintainer"


def test_a_delivery_accepted_before_a_crash_is_triaged_on_restart(tmp_path: Path) -> None:
    store = FakeJobStore()
    payload = _labelled_issue_payload()
    forge = FakeForge(repo_full_name=payload["repository"]["full_name"],
                      roles={"maintainer": "admin"})
    ctx = TriageContext(store=store, settings=GitHubSettings(), forges=lambda r, i: forge)
    inbox = SpoolInbox(tmp_path / "inbox")

    def die(background: BackgroundTasks, job: Callable[[], None]) -> None:
        """The process dies right after answering: the triage never runs."""

    app = _app(store, inbox, register(EventRouter(), ctx), schedule=die)
    body, headers = delivery("issues", payload, SECRET, delivery_id="before-crash")
    assert TestClient(app).post(PATH, content=body, headers=headers).status_code == 202
    assert store.jobs == {} and len(inbox.pending()) == 1

    restarted_inbox = SpoolInbox(tmp_path / "inbox")
    assert recover(store, register(EventRouter(), ctx), restarted_inbox) == 1
    assert len(store.jobs) == 1 and restarted_inbox.pending() == []
    again = TestClient(app).post(PATH, content=body, headers=headers)
    assert again.json()["status"] == "duplicate" and len(store.jobs) == 1


def test_a_failing_triage_keeps_the_delivery_for_recovery(tmp_path: Path) -> None:
    store, inbox, events = FakeJobStore(), SpoolInbox(tmp_path / "inbox"), EventRouter()
    calls: list[str] = []

    def flaky(event: WebhookEvent) -> None:
        calls.append(event.delivery_id)
        if len(calls) == 1:
            raise ConnectionError("GitHub unreachable")

    events.add("ping", flaky)
    body, headers = delivery("ping", _ping(), SECRET, delivery_id="flaky-1")
    assert TestClient(_app(store, inbox, events)).post(PATH, content=body,
                                                       headers=headers).status_code == 202
    assert [e.delivery_id for e in inbox.pending()] == ["flaky-1"]
    assert recover(store, events, inbox) == 1
    assert calls == ["flaky-1", "flaky-1"] and inbox.pending() == []


def test_events_without_handlers_are_acknowledged_and_ignored(
    parts: tuple[FakeJobStore, SpoolInbox, EventRouter], recorder: Recorder,
) -> None:
    store, inbox, events = parts
    push = json.loads((EXAMPLES / "push" / "payload.json").read_text("utf-8"))
    body, headers = delivery("push", push, SECRET)
    answer = TestClient(_app(store, inbox, events)).post(PATH, content=body, headers=headers)
    assert answer.status_code == 202 and answer.json()["status"] == "ignored"
    assert not recorder.seen


def test_router_matches_event_and_event_action_like_probot() -> None:
    router = EventRouter()
    seen: list[str] = []
    router.on("issues.labeled")(lambda e: seen.append("labeled"))
    router.on("issues")(lambda e: seen.append("any-issue"))
    router.on("installation", "installation_repositories")(lambda e: seen.append("install"))
    assert router.dispatch(WebhookEvent("issues", "1", {"action": "labeled"})) == 2
    assert router.dispatch(WebhookEvent("issues", "2", {"action": "opened"})) == 1
    assert router.dispatch(WebhookEvent("installation_repositories", "3",
                                        {"action": "added"})) == 1
    assert router.dispatch(WebhookEvent("push", "4", {})) == 0
    assert seen == ["labeled", "any-issue", "any-issue", "install"]
    with pytest.raises(ValueError, match="bad event key"):
        router.add("issues.labeled.extra", lambda e: None)
