"""The HTTP surface under attack, over real sockets against `diffusellm serve`: oversized and slow
bodies, nested JSON, token guessing, spoofed X-Forwarded-For, CSRF, logout, API docs."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from diffusellm.app.webhooks import signature_for
from diffusellm.jobs.model import JobCommand, JobState
from diffusellm.jobs.store import SqlJobStore
from tests.app.support_http import (
    ADMIN_TOKEN,
    MIB,
    WEBHOOK_SECRET,
    WORKER_TOKEN,
    Served,
    chunked,
    client,
    post_head,
    raw_request,
    read_status,
    start_serve,
    stop,
)
from tests.jobs.support import new_job

BODY_TIMEOUT_S = 2


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    running = start_serve(tmp_path_factory.mktemp("serve"), f"server.body_timeout_seconds={BODY_TIMEOUT_S}")
    try:
        yield running
    finally:
        stop(running)


def _webhook_headers(body: bytes | None = None) -> dict[str, str]:
    signature = signature_for(WEBHOOK_SECRET, body) if body is not None else "sha256=" + "0" * 64
    return {"X-GitHub-Event": "ping", "X-GitHub-Delivery": "d-hostile", "X-Hub-Signature-256": signature,
            "Content-Type": "application/json"}


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def _login(http: httpx.Client) -> str:
    """Log in; the CSRF token of the new session."""
    csrf = _csrf(http.get("/admin/login").text)
    assert http.post("/admin/login", data={"csrf_token": csrf, "token": ADMIN_TOKEN}).status_code == 303
    return _csrf(http.get("/admin/jobs").text)


def test_oversized_bodies_are_refused_and_the_server_does_not_grow(served: Served) -> None:
    before = served.memory_kib("VmRSS")
    declared = {"Content-Length": str(300 * MIB)}
    # Judged by the headers alone: nothing of the body is read.
    assert raw_request(served.port, post_head("/webhooks/github", {**_webhook_headers(), **declared}),
                       chunked(0)) == 413
    # Under the caps but unsigned, or without the worker token: answered with no byte of it sent.
    under = {"Content-Length": str(5 * MIB)}
    assert raw_request(served.port, post_head("/webhooks/github", {"X-GitHub-Event": "ping", **under}),
                       []) == 401
    assert raw_request(served.port, post_head("/api/worker/claim", under), []) == 401
    # Streamed without a length: cut at the route's cap while it arrives.
    stream = {"Transfer-Encoding": "chunked"}
    assert raw_request(served.port, post_head("/admin/login", {**stream, "Content-Type":
                                                                "application/x-www-form-urlencoded"}),
                       chunked(60 * MIB)) == 413
    worker = {**stream, "Authorization": f"Bearer {WORKER_TOKEN}", "Content-Type": "application/json"}
    assert raw_request(served.port, post_head("/api/worker/claim", worker), chunked(60 * MIB)) == 413
    assert raw_request(served.port, post_head("/healthz", stream), chunked(60 * MIB)) in (405, 413)
    # Peak RSS (VmHWM) over the RSS before: 180 MB offered to routes capped at 4 KiB, 8 MiB, 64 KiB.
    small_caps_mib = (served.memory_kib("VmHWM") - before) / 1024
    assert small_caps_mib < 24, f"the server grew by {small_caps_mib:.0f} MiB"
    assert raw_request(served.port, post_head("/webhooks/github", {**_webhook_headers(), **stream}),
                       chunked(120 * MIB)) == 413
    webhook_mib = (served.memory_kib("VmHWM") - before) / 1024
    assert webhook_mib < 56, f"120 MB offered to the 25 MB webhook cap grew the server by {webhook_mib:.0f} MiB"
    assert httpx.get(f"{served.url}/healthz", timeout=10).status_code == 200


def test_a_body_trickling_in_is_cut_off_and_others_are_served_meanwhile(served: Served) -> None:
    head = post_head("/webhooks/github", {**_webhook_headers(), "Content-Length": "5000"})
    with socket.create_connection(("127.0.0.1", served.port), timeout=60, source_address=("127.0.0.9", 0)) as sock:
        sock.sendall(head + b'{"zen": ')
        assert httpx.get(f"{served.url}/healthz", timeout=10).status_code == 200
        assert read_status(sock) == 408, f"answered after body_timeout_seconds={BODY_TIMEOUT_S}"


def test_deeply_nested_json_is_a_400_not_a_500(served: Served) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    signed = httpx.post(f"{served.url}/webhooks/github", content=deep, headers=_webhook_headers(deep), timeout=30)
    assert signed.status_code == 400 and "deeper than" in signed.json()["reason"]
    over_the_cap = json.dumps({"worker_id": "w", "kind": "note", "message": "m",
                               "data": json.loads("[" * 70 + "]" * 70)})
    bearer = {"Authorization": f"Bearer {WORKER_TOKEN}", "Content-Type": "application/json"}
    for body in (deep, over_the_cap.encode()):
        answer = httpx.post(f"{served.url}/api/worker/jobs/j1/events", content=body, headers=bearer, timeout=30)
        assert answer.status_code == 400 and "deeper than" in answer.json()["detail"]
    unauthenticated = httpx.post(f"{served.url}/api/worker/jobs/j1/events", content=deep, timeout=30,
                                 headers={"Content-Type": "application/json"})
    assert unauthenticated.status_code == 401, "the token is checked before the body is looked at"
    shallow = httpx.post(f"{served.url}/api/worker/jobs/j1/events", headers=bearer, timeout=30,
                         content=json.dumps({"worker_id": "w", "kind": "note", "message": "m", "data": {"a": [[1]]}}))
    assert shallow.status_code == 409, "an ordinary body reaches the handler (the job is not this worker's)"


def test_bearer_guesses_on_query_graph_are_throttled_per_address(served: Served) -> None:
    params = {"repo": "octo/demo", "symbol": "pkg.mod.func"}
    with client(served, "127.0.0.4") as guesser:
        for attempt in range(5):
            wrong = guesser.get("/query_graph", params=params, headers={"Authorization": f"Bearer guess-{attempt}"})
            assert wrong.status_code == 401
        locked = guesser.get("/query_graph", params=params, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0, "even the right token waits"
    with client(served, "127.0.0.7") as owner:
        answer = owner.get("/query_graph", params=params, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert answer.status_code == 404 and "no knowledge graph" in answer.json()["error"]


def test_a_spoofed_x_forwarded_for_does_not_escape_the_login_throttle(served: Served) -> None:
    with client(served, "127.0.0.5") as guesser:
        csrf = _csrf(guesser.get("/admin/login").text)
        for attempt in range(5):
            wrong = guesser.post("/admin/login", data={"csrf_token": csrf, "token": "guess"},
                                 headers={"X-Forwarded-For": f"203.0.113.{attempt}"})
            assert wrong.status_code == 401
        spoofed = guesser.post("/admin/login", data={"csrf_token": csrf, "token": ADMIN_TOKEN},
                               headers={"X-Forwarded-For": "198.51.100.77"})
        assert spoofed.status_code == 429, "no proxy is configured, so no forwarded header is believed"


def _waiting_job(served: Served, key: str) -> str:
    store = SqlJobStore(served.store_url)
    try:
        job, _ = store.enqueue(new_job(key, command=JobCommand.PLAN))
        claimed = store.claim("worker-1", 60)
        assert claimed is not None and claimed.id == job.id
        assert store.finish(job.id, "worker-1", JobState.WAITING_APPROVAL, result={"status": "planned"})
        return job.id
    finally:
        store.close()


def _state(served: Served, job_id: str) -> JobState:
    store = SqlJobStore(served.store_url)
    try:
        job = store.get(job_id)
        assert job is not None
        return job.state
    finally:
        store.close()


def test_csrf_from_another_origin_or_a_planted_cookie_approves_nothing(served: Served) -> None:
    job_id = _waiting_job(served, "csrf")
    approve = f"/admin/jobs/{job_id}/approve"
    with client(served, "127.0.0.6") as victim, client(served, "127.0.0.10") as attacker:
        csrf = _login(victim)
        foreign = victim.post(approve, data={"csrf_token": csrf}, headers={"Origin": "https://evil.example"})
        assert foreign.status_code == 403
        sibling = victim.post(approve, data={"csrf_token": csrf}, headers={"Sec-Fetch-Site": "same-site"})
        assert sibling.status_code == 403
        # A same-site page can set cookies on this host: it plants a genuine login token it fetched.
        planted = _csrf(attacker.get("/admin/login").text)
        victim.cookies.set("diffusellm_csrf", planted)
        assert victim.post(approve, data={"csrf_token": planted}).status_code == 403
        assert _state(served, job_id) is JobState.WAITING_APPROVAL
        own = victim.post(approve, data={"csrf_token": csrf},
                          headers={"Origin": served.url, "Sec-Fetch-Site": "same-origin"})
        assert own.status_code == 303
    assert _state(served, job_id) is JobState.QUEUED


def test_logout_ends_the_session_even_for_a_copied_cookie(served: Served) -> None:
    with client(served, "127.0.0.8") as admin:
        csrf = _login(admin)
        copied = admin.cookies.get("diffusellm_admin")
        assert copied and admin.get("/admin/jobs").status_code == 200
        assert admin.post("/admin/logout", data={"csrf_token": csrf}).status_code == 303
    with client(served, "127.0.0.11") as thief:
        thief.cookies.set("diffusellm_admin", copied)
        assert thief.get("/admin/jobs").status_code == 303
        assert thief.get("/query_graph", params={"repo": "o/r", "symbol": "s"}).status_code == 401


def test_api_docs_are_off_by_default(served: Served) -> None:
    for path in ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"):
        assert httpx.get(f"{served.url}{path}", timeout=10).status_code == 404


def test_forwarded_headers_are_believed_from_a_configured_proxy_only(tmp_path: Path) -> None:
    served = start_serve(tmp_path, args=("--forwarded-allow-ips", "127.0.0.12, ::1"))
    try:
        with client(served, "127.0.0.12") as proxy:
            csrf = _csrf(proxy.get("/admin/login").text)
            for _ in range(5):
                wrong = proxy.post("/admin/login", data={"csrf_token": csrf, "token": "guess"},
                                   headers={"X-Forwarded-For": "203.0.113.9"})
                assert wrong.status_code == 401
            other_client = proxy.post("/admin/login", data={"csrf_token": csrf, "token": ADMIN_TOKEN},
                                      headers={"X-Forwarded-For": "198.51.100.1"})
            assert other_client.status_code == 303, "the proxy's word on the client address is taken"
        with client(served, "127.0.0.13") as direct:
            csrf = _csrf(direct.get("/admin/login").text)
            for attempt in range(5):
                direct.post("/admin/login", data={"csrf_token": csrf, "token": "guess"},
                            headers={"X-Forwarded-For": f"203.0.113.{attempt + 20}"})
            assert direct.post("/admin/login", data={"csrf_token": csrf, "token": ADMIN_TOKEN},
                               headers={"X-Forwarded-For": "198.51.100.2"}).status_code == 429
    finally:
        stop(served)
