"""Admin pages on a real SQLite job store: login, list and detail, approve, edit, cancel, CSRF, graph."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from structlog.testing import capture_logs

from diffusellm.app.admin.auth import SESSION_COOKIE, AdminAuth, LoginThrottle
from diffusellm.app.admin.graph import checkout_dir
from diffusellm.app.admin.routes import admin_router
from diffusellm.app.admin.views import patch_file
from diffusellm.app.main import build_app
from diffusellm.app.metrics import Metrics
from diffusellm.app.server import create_app
from diffusellm.app.settings import ServerSettings
from diffusellm.config import Settings, load_settings
from diffusellm.jobs.model import Job, JobCommand, JobState
from diffusellm.jobs.store import SqlJobStore
from diffusellm.learn.outcomes import OutcomeStore
from diffusellm.pipeline.job import RunReport
from diffusellm.worker import execute
from tests.conftest import make_repo
from tests.jobs.conftest import pg_admin_url, pg_url, store_url  # noqa: F401  (SQLite and PostgreSQL)
from tests.jobs.support import new_job, sqlite_store, stored

TOKEN = "admin-token-for-tests-0123456789"
ENV = {"DIFFUSELLM_ADMIN_TOKEN": TOKEN}
SPEC = """```yaml
title: Rename helper
operations:
  - op: rename_symbol
    target: pkg.core.helper
    new_name: assist
```
"""
XSS = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def store(tmp_path: Path) -> SqlJobStore:
    return sqlite_store(tmp_path)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "proj", {
        "pkg/__init__.py": "",
        "pkg/core.py": "def helper():\n    return 1\n\n\ndef main():\n    return helper() + 1\n",
    })


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(None, [f"state_dir={tmp_path / 'state'}", "validation.environment.build=false"])


def _client(store: SqlJobStore, settings: Settings, repo: Path, env: dict[str, str] = ENV) -> TestClient:
    router = admin_router(store=store, settings=settings, environ=env, local_repos=[repo])
    app = create_app(store=store, server=ServerSettings(in_process_worker=False), routers=[router],
                     counters=Metrics())
    return TestClient(app, follow_redirects=False)


@pytest.fixture
def client(store: SqlJobStore, settings: Settings, repo: Path) -> TestClient:
    return _client(store, settings, repo)


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def _login(client: TestClient, token: str = TOKEN) -> str:
    """Log in through the form; returns the CSRF token for later posts."""
    page = client.get("/admin/login")
    assert page.status_code == 200
    csrf = _csrf(page.text)
    done = client.post("/admin/login", data={"csrf_token": csrf, "token": token})
    assert done.status_code == 303, done.text
    signed_in = _csrf(client.get("/admin/jobs").text)
    assert signed_in != csrf, "a session's forms carry the session's own token"
    return signed_in


def _waiting(store: SqlJobStore, key: str = "w", body: str = SPEC, title: str = "Rename helper") -> Job:
    job, _ = store.enqueue(new_job(key, body=body, title=title, command=JobCommand.PLAN))
    claimed = store.claim("worker-1", 60)
    assert claimed is not None and claimed.id == job.id
    assert store.finish(job.id, "worker-1", JobState.WAITING_APPROVAL,
                        result={"status": "planned", "plan_posted": True})
    return stored(store, job.id)


def test_guessing_the_token_is_slowed_to_five_tries_a_minute_per_address(client: TestClient) -> None:
    csrf = _csrf(client.get("/admin/login").text)
    for _ in range(5):
        assert client.post("/admin/login", data={"csrf_token": csrf, "token": "guess"}).status_code == 401
    blocked = client.post("/admin/login", data={"csrf_token": csrf, "token": TOKEN})  # even the right one
    assert blocked.status_code == 429 and "Too many wrong tokens" in blocked.text
    assert 1 <= int(blocked.headers["retry-after"]) <= 60
    assert SESSION_COOKIE not in blocked.cookies


def test_the_throttle_forgets_failures_after_the_window_and_after_a_success() -> None:
    now = [1000.0]
    throttle = LoginThrottle(max_failures=2, window_seconds=60, clock=lambda: now[0])
    throttle.failed("a")
    throttle.failed("a")
    assert throttle.wait_seconds("a") == 60 and throttle.wait_seconds("b") == 0
    now[0] += 59.5
    assert throttle.wait_seconds("a") == 1
    now[0] += 1
    assert throttle.wait_seconds("a") == 0
    throttle.failed("a")
    throttle.succeeded("a")
    throttle.failed("a")
    assert throttle.wait_seconds("a") == 0


def test_without_an_admin_token_the_pages_are_disabled(store: SqlJobStore, settings: Settings, repo: Path) -> None:
    client = _client(store, settings, repo, env={})
    page = client.get("/admin/jobs")
    assert page.status_code == 503
    assert "DIFFUSELLM_ADMIN_TOKEN" in page.text
    assert client.post("/admin/login", data={"token": ""}).status_code == 503
    graph = client.get("/query_graph", params={"repo": f"local:{repo}", "symbol": "helper"})
    assert graph.status_code == 503


def test_pages_need_a_login_and_a_wrong_token_is_refused(client: TestClient) -> None:
    assert client.get("/admin/jobs").headers["location"] == "/admin/login"
    fragment = client.get("/admin/jobs/rows", headers={"HX-Request": "true"})
    assert fragment.status_code == 401 and fragment.headers["hx-redirect"] == "/admin/login"

    csrf = _csrf(client.get("/admin/login").text)
    wrong = client.post("/admin/login", data={"csrf_token": csrf, "token": TOKEN + "x"})
    assert wrong.status_code == 401
    assert "not right" in wrong.text
    assert SESSION_COOKIE not in wrong.cookies
    assert client.get("/admin/jobs").status_code == 303

    done = client.post("/admin/login", data={"csrf_token": csrf, "token": TOKEN})
    cookie = done.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert client.get("/admin/jobs").status_code == 200
    assert client.get("/admin/", follow_redirects=True).url.path == "/admin/jobs"


def test_a_forged_or_expired_session_is_refused(client: TestClient) -> None:
    now = [1_000_000.0]
    auth = AdminAuth(TOKEN, session_seconds=60, clock=lambda: now[0])
    session = auth.new_session()
    assert auth.valid_session(session)
    now[0] += 61
    assert not auth.valid_session(session)
    assert not AdminAuth("another-token").valid_session(AdminAuth(TOKEN).new_session())
    client.cookies.set(SESSION_COOKIE, "9999999999.nonce." + "0" * 64)
    assert client.get("/admin/jobs").status_code == 303


def test_login_form_without_csrf_token_is_refused(client: TestClient) -> None:
    client.get("/admin/login")
    refused = client.post("/admin/login", data={"token": TOKEN})
    assert refused.status_code == 403
    assert SESSION_COOKIE not in refused.cookies


def test_list_and_detail_show_the_job_with_user_text_escaped(client: TestClient, store: SqlJobStore) -> None:
    job, _ = store.enqueue(new_job("x", title=f"Fix {XSS}", body=f"Please {XSS}\n\n{SPEC}"))
    _login(client)
    listing = client.get("/admin/jobs")
    assert listing.status_code == 200
    assert job.id[:12] in listing.text and "octo/demo" in listing.text and "#7" in listing.text
    assert "<script>alert" not in listing.text and "<img src=x" not in listing.text
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in listing.text
    assert "script-src 'self'" in listing.headers["content-security-policy"]

    detail = client.get(f"/admin/jobs/{job.id}")
    assert detail.status_code == 200
    assert "<script>alert" not in detail.text and "<img src=x" not in detail.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in detail.text
    assert "new_name: assist" in detail.text, "the spec block of the issue is shown"
    assert "enqueued" in detail.text, "the timeline is shown"
    assert client.get("/admin/jobs/does-not-exist").status_code == 404


def test_list_filters_by_state_and_its_fragment_refreshes(client: TestClient, store: SqlJobStore) -> None:
    waiting = _waiting(store)
    queued, _ = store.enqueue(new_job("q", repo="octo/other", title="Queued one"))
    _login(client)
    only_waiting = client.get("/admin/jobs", params={"state": "waiting_approval"}).text
    assert waiting.id[:12] in only_waiting and queued.id[:12] not in only_waiting
    rows = client.get("/admin/jobs/rows", params={"state": "queued"})
    assert rows.text.lstrip().startswith("<tbody")
    assert 'hx-trigger="every 5s"' in rows.text
    assert queued.id[:12] in rows.text and waiting.id[:12] not in rows.text


def test_approve_queues_a_waiting_job_and_only_once(client: TestClient, store: SqlJobStore) -> None:
    job = _waiting(store)
    csrf = _login(client)
    page = client.get(f"/admin/jobs/{job.id}").text
    assert 'id="approve"' in page
    done = client.post(f"/admin/jobs/{job.id}/approve", data={"csrf_token": csrf})
    assert done.status_code == 303 and done.headers["location"] == f"/admin/jobs/{job.id}"
    assert stored(store, job.id).state is JobState.QUEUED
    assert any(e.kind == "admin" and "approved" in e.message for e in store.events(job.id))
    again = client.post(f"/admin/jobs/{job.id}/approve", data={"csrf_token": csrf})
    assert again.status_code == 409


def test_posts_without_a_matching_csrf_token_change_nothing(client: TestClient, store: SqlJobStore) -> None:
    job = _waiting(store)
    csrf = _login(client)
    assert client.post(f"/admin/jobs/{job.id}/approve", data={}).status_code == 403
    assert client.post(f"/admin/jobs/{job.id}/cancel", data={"csrf_token": "x." + "0" * 64}).status_code == 403
    login_token = AdminAuth(TOKEN).new_csrf()  # genuine, but a login form's, not this session's
    assert client.post(f"/admin/jobs/{job.id}/approve", data={"csrf_token": login_token}).status_code == 403
    other = AdminAuth(TOKEN).session_csrf(AdminAuth(TOKEN).new_session())  # another session's
    assert other and client.post(f"/admin/jobs/{job.id}/approve", data={"csrf_token": other}).status_code == 403
    assert client.post(f"/admin/jobs/{job.id}/approve", data={"csrf_token": csrf},
                       headers={"Origin": "https://evil.example"}).status_code == 403
    assert client.post(f"/admin/jobs/{job.id}/approve", data={"csrf_token": csrf},
                       headers={"Sec-Fetch-Site": "same-site"}).status_code == 403
    assert stored(store, job.id).state is JobState.WAITING_APPROVAL


def test_cancel_ends_a_queued_job(client: TestClient, store: SqlJobStore) -> None:
    job, _ = store.enqueue(new_job("c"))
    csrf = _login(client)
    assert client.post(f"/admin/jobs/{job.id}/cancel", data={"csrf_token": csrf}).status_code == 303
    assert stored(store, job.id).state is JobState.CANCELLED
    page = client.get(f"/admin/jobs/{job.id}").text
    assert 'id="cancel"' not in page and 'id="approve"' not in page


def test_edit_spec_validates_then_saves_into_the_waiting_job(client: TestClient, store: SqlJobStore) -> None:
    job = _waiting(store)
    csrf = _login(client)
    bad = "title: Rename\noperations:\n  - op: rename_symbol\n    target: pkg.core.helper\n    new_name: 'class'\n"
    refused = client.post(f"/admin/jobs/{job.id}/spec", data={"csrf_token": csrf, "spec": bad})
    assert refused.status_code == 422
    assert "keyword" in refused.text and "operations[0]" in refused.text
    assert "edited_spec" not in stored(store, job.id).result

    good = "title: Rename\r\noperations:\r\n  - op: rename_symbol\r\n    target: pkg.core.helper\r\n    new_name: assist_me\r\n"
    saved = client.post(f"/admin/jobs/{job.id}/spec", data={"csrf_token": csrf, "spec": good, "editor": " Ada\n L. "})
    assert saved.status_code == 303
    after = stored(store, job.id)
    assert after.result["edited_spec"] == good.replace("\r\n", "\n")
    assert after.result["spec_author"] == "Ada L."
    assert after.result["plan_posted"] is True, "the rest of the result is kept"
    assert after.state is JobState.WAITING_APPROVAL
    page = client.get(f"/admin/jobs/{job.id}").text
    assert "new_name: assist_me" in page and '<small id="spec-origin">(edited by Ada L.)</small>' in page
    assert "spec edited by Ada L. on the admin page" in page, "the timeline names the editor"

    assert client.post(f"/admin/jobs/{job.id}/approve", data={"csrf_token": csrf}).status_code == 303
    late = client.post(f"/admin/jobs/{job.id}/spec", data={"csrf_token": csrf, "spec": good})
    assert late.status_code == 409


def test_amend_waiting_touches_only_waiting_jobs(store_url: str) -> None:  # noqa: F811  (the fixture)
    store = SqlJobStore(store_url)
    waiting = _waiting(store, key="b")
    queued, _ = store.enqueue(new_job("a"))
    assert not store.amend_waiting(queued.id, {"edited_spec": "x"}, "edit")
    assert stored(store, queued.id).result == {}
    assert store.amend_waiting(waiting.id, {"edited_spec": "y"}, "edited by hand")
    assert stored(store, waiting.id).result == {"status": "planned", "plan_posted": True, "edited_spec": "y"}
    assert store.events(waiting.id)[-1].message == "edited by hand"
    assert store.approve(waiting.id)
    assert stored(store, waiting.id).result["edited_spec"] == "y", "approval keeps the edit for the run"
    assert not store.amend_waiting(waiting.id, {"edited_spec": "z"}, "too late")
    store.close()


def test_submit_queues_a_frozen_job_for_a_configured_local_repo(client: TestClient, store: SqlJobStore, repo: Path) -> None:
    csrf = _login(client)
    form = client.get("/admin/submit").text
    submission = re.search(r'name="submission" value="([^"]+)"', form)
    assert submission and str(repo.resolve()) in form
    data = {"csrf_token": csrf, "submission": submission.group(1), "repo": str(repo.resolve()),
            "title": "Rename helper", "body": "Do it<!-- hidden instruction -->\n" + SPEC, "command": "plan"}
    done = client.post("/admin/submit", data=data)
    assert done.status_code == 303
    [job] = store.list_jobs()
    assert done.headers["location"] == f"/admin/jobs/{job.id}"
    assert job.request.repo_full_name == f"local:{repo.resolve()}"
    assert job.command is JobCommand.PLAN and job.state is JobState.QUEUED
    assert "hidden instruction" not in job.request.body, "the request is frozen like an issue"
    assert client.post("/admin/submit", data=data).headers["location"] == f"/admin/jobs/{job.id}"
    assert len(store.list_jobs()) == 1, "a double submit queues one job"

    elsewhere = client.post("/admin/submit", data={**data, "repo": "/etc", "submission": "other"})
    assert elsewhere.status_code == 400
    assert len(store.list_jobs()) == 1


def test_detail_shows_report_validation_patch_and_pr(client: TestClient, store: SqlJobStore, settings: Settings, tmp_path: Path) -> None:
    job, _ = store.enqueue(new_job("r"))
    run_id = "20261201-120000-0123abcd"
    patch = patch_file(stored(store, job.id).model_copy(update={"result": {"report": {"job_id": run_id}}}),
                       settings.state_path())
    assert patch is not None
    patch.parent.mkdir(parents=True)
    patch.write_text("--- a/pkg/core.py\n+++ b/pkg/core.py\n-def helper():\n+def assist():\n")
    outside = tmp_path / "secret.patch"
    outside.write_text("TOP SECRET")
    elsewhere = settings.state_path() / "repos" / "x" / "jobs" / "1" / "change.patch"
    elsewhere.parent.mkdir(parents=True)
    elsewhere.write_text("ANOTHER REPOSITORY'S PATCH")
    report = {"job_id": run_id, "patch_path": str(elsewhere), "validation": {"checks": [
        {"name": "ruff", "command": ["ruff"], "passed": True, "scope": "1 changed file"},
        {"name": "pytest", "command": ["pytest"], "passed": False, "new_failures": ["tests/test_core.py::test_x"],
         "base_failures": 0, "head_failures": 1}]}}
    assert store.claim("w", 60) is not None
    store.finish(job.id, "w", JobState.SUCCEEDED, result={
        "status": "succeeded", "pr_number": 12, "pr_url": "https://github.example/octo/demo/pull/12",
        "report": report})
    _login(client)
    page = client.get(f"/admin/jobs/{job.id}").text
    assert "+def assist():" in page and "ANOTHER REPOSITORY" not in page
    assert "tests/test_core.py::test_x" in page and "0 → 1" in page
    assert 'href="https://github.example/octo/demo/pull/12"' in page
    assert "Verdict" not in page
    assert store.record_verdict(job.id, "accepted", "pull request #12 merged")
    assert "Verdict: <strong class=\"verdict\">accepted (pull request #12 merged)</strong>" in client.get(f"/admin/jobs/{job.id}").text

    other, _ = store.enqueue(new_job("s"))
    assert store.claim("w", 60) is not None
    store.finish(other.id, "w", JobState.SUCCEEDED, result={
        "pr_url": "javascript:alert(1)", "report": {"job_id": f"../../../../{outside.parent.name}",
                                                    "patch_path": str(outside)}})
    page = client.get(f"/admin/jobs/{other.id}").text
    assert "TOP SECRET" not in page, "only the job's own patch is read, never a path a worker names"
    assert 'href="javascript:' not in page


def test_query_graph_answers_from_a_digested_local_repo(client: TestClient, repo: Path, settings: Settings) -> None:
    params = {"repo": f"local:{repo}", "symbol": "pkg.core.helper"}
    assert client.get("/query_graph", params=params).status_code == 401
    wrong = client.get("/query_graph", params=params, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    answer = client.get("/query_graph", params=params, headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert [d["qualname"] for d in data["definitions"]] == ["pkg.core.helper"]
    assert data["definitions"][0]["path"] == "pkg/core.py"
    assert [c["qualname"] for c in data["callers"]] == ["pkg.core.main"]
    main = client.get("/query_graph", params={**params, "symbol": "main"},
                      headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert main["callees"] == ["pkg.core.helper"]

    _login(client)  # the session cookie works too
    missing = client.get("/query_graph", params={**params, "symbol": "nowhere"})
    assert missing.status_code == 404 and "nowhere" in missing.json()["error"]
    assert client.get("/query_graph", params={"repo": "local:/etc", "symbol": "x"}).status_code == 403
    assert client.get("/query_graph", params={"repo": "octo/demo", "symbol": "x"}).status_code == 404
    assert client.get("/query_graph", params={"repo": "../../etc", "symbol": "x"}).status_code == 400


def test_graph_of_a_github_repo_is_looked_up_where_workers_check_it_out(settings: Settings) -> None:
    assert checkout_dir(settings.state_path(), "octo/demo.py") == execute._checkout_dir(settings, "octo/demo.py")  # pyright: ignore[reportPrivateUsage]


def test_static_files_are_served_from_a_fixed_list(client: TestClient) -> None:
    htmx = client.get("/admin/static/htmx.min.js")
    assert htmx.status_code == 200 and "javascript" in htmx.headers["content-type"]
    assert htmx.text.startswith("var htmx=")
    assert client.get("/admin/static/admin.css").headers["content-type"].startswith("text/css")
    chart = client.get("/admin/static/vendor/uPlot.iife.min.js")
    assert chart.status_code == 200 and "javascript" in chart.headers["content-type"]
    assert chart.text.startswith("/*! https://github.com/leeoniya/uPlot (v1.6.32) */")
    assert client.get("/admin/static/vendor/uPlot.LICENSE").status_code == 404
    assert client.get("/admin/static/..%2F..%2Fadmin.py").status_code == 404
    assert client.get("/admin/static/NOTICE").status_code == 404


def test_build_app_mounts_the_admin_pages(tmp_path: Path, repo: Path) -> None:
    settings = load_settings(None, [f"state_dir={tmp_path / 'state'}", "validation.environment.build=false", "server.in_process_worker=false",
                                    f"store.url=sqlite:///{tmp_path / 'app.sqlite'}"])
    with TestClient(build_app(settings, ENV, local_repos=[repo]), follow_redirects=False) as client:
        csrf = _login(client)
        assert client.get("/admin/submit").status_code == 200
        assert client.post("/admin/logout", data={"csrf_token": csrf}).status_code == 303
        assert client.get("/admin/jobs").status_code == 303


def test_the_learning_page_shows_verdicts_remembered_runs_and_adapters(
    client: TestClient, store: SqlJobStore, settings: Settings, repo: Path
) -> None:
    assert client.get("/admin/learn").status_code == 303  # behind the login
    for key, pr in (("merged", 3), ("open", 4), ("no-pr", None)):
        job, _ = store.enqueue(new_job(key))
        assert store.claim("w", 60) is not None
        store.finish(job.id, "w", JobState.SUCCEEDED, result={"pr_number": pr} if pr else {"status": "succeeded"})
        if key == "merged":
            store.record_verdict(job.id, "accepted", "pull request #3 merged")
    state = settings.state_path()
    report = {"job_id": "run-9", "repo": str(repo), "base_commit": "0" * 40, "status": "succeeded", "branch": "b",
              "commit": "1" * 40, "changed_files": [], "changelog": None, "validation": {},
              "spec": {"title": "Make <b>bold</b> names", "operations": [
                  {"op": "rename_symbol", "target": "pkg.core.helper", "new_name": "assist"}]},
              "summary_path": "", "patch_path": ""}
    OutcomeStore.in_state(state).record(RunReport.model_validate(report))
    adapter = state / "learn" / "adapters" / "20261126-080000"
    adapter.mkdir(parents=True)
    (adapter / "training.json").write_text(json.dumps(
        {"date": "2026-11-26T08:00:00+00:00", "base_model": "embedded:smollm2-135m", "examples": 4, "steps": 60,
         "first_loss": 2.5, "last_loss": 0.75, "seconds": 31.2}))
    _login(client)
    page = client.get("/admin/learn").text
    assert re.search(r"<td>1</td><td>0</td><td>1</td>", page), "accepted 1, rejected 0, open 1"
    assert "pending: 1" in page and "<code>run-9</code>" in page
    assert "Make &lt;b&gt;bold&lt;/b&gt; names" in page, "titles are escaped"
    assert "2.500 → 0.750" in page and "embedded:smollm2-135m" in page and str(adapter) in page
    assert 'href="/admin/learn"' in page


def test_every_token_try_is_logged_and_bearer_guesses_share_the_login_throttle(client: TestClient) -> None:
    params = {"repo": "octo/demo", "symbol": "x"}
    with capture_logs() as logs:
        for _ in range(3):
            assert client.get("/query_graph", params=params, headers={"Authorization": "Bearer nope"}).status_code == 401
        csrf = _csrf(client.get("/admin/login").text)
        for _ in range(2):
            assert client.post("/admin/login", data={"csrf_token": csrf, "token": "nope"}).status_code == 401
        throttled = client.get("/query_graph", params=params, headers={"Authorization": f"Bearer {TOKEN}"})
    assert throttled.status_code == 429 and throttled.headers["Retry-After"]
    seen = [(e["event"], e.get("via")) for e in logs if str(e["event"]).startswith("admin.token")]
    assert seen == [("admin.token_failed", "bearer")] * 3 + [("admin.token_failed", "login")] * 2 + [
        ("admin.token_throttled", "bearer")]
