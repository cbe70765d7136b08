"""Job pages on a real SQLite store: the list's phase, worker, links and waits; the detail's phases,
per-file diff, live part, Retry, and where the spec came from."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from diffusellm.app.admin.diff import split_patch
from diffusellm.app.admin.views import patch_file
from diffusellm.config import Settings, load_settings
from diffusellm.jobs.model import EDITED_SPEC_KEY, SPEC_AUTHOR_KEY, SPEC_BY_MODEL, JobCommand, JobState
from diffusellm.jobs.store import SqlJobStore
from tests.app.admin_support import admin_client, login
from tests.conftest import make_repo
from tests.jobs.conftest import pg_admin_url, pg_url, store_url  # noqa: F401  (SQLite and PostgreSQL)
from tests.jobs.support import FakeClock, new_job, sqlite_store, stored

PATCH = """diff --git a/pkg/core.py b/pkg/core.py
index 1111111..2222222 100644
--- a/pkg/core.py
+++ b/pkg/core.py
@@ -1,5 +1,5 @@
-def helper():
+def assist():
     return 1
diff --git a/tests/test_core.py b/tests/test_core.py
new file mode 100644
--- /dev/null
+++ b/tests/test_core.py
@@ -0,0 +1,2 @@
+def test_assist():
+    assert assist() == 1
"""


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> SqlJobStore:
    return sqlite_store(tmp_path, clock=clock)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(None, [f"state_dir={tmp_path / 'state'}"])


@pytest.fixture
def client(store: SqlJobStore, settings: Settings, tmp_path: Path, clock: FakeClock) -> TestClient:
    repo = make_repo(tmp_path / "proj", {"pkg/__init__.py": ""})
    return admin_client(store, settings, repo, clock=clock)


def _row(html: str, job_id: str) -> str:
    found = re.search(rf'<tr data-job="{job_id}">(.*?)</tr>', html, re.DOTALL)
    assert found, f"no row for {job_id}"
    return found.group(1)


def test_the_list_shows_phase_worker_links_and_why_a_queued_job_waits(client: TestClient, store: SqlJobStore) -> None:
    running, _ = store.enqueue(new_job("run"))
    assert store.claim("gpu-1", 60) is not None
    store.add_event(running.id, "phase", "generate")
    behind, _ = store.enqueue(new_job("behind", title="Second on the same repo"))
    done, _ = store.enqueue(new_job("done", repo="octo/other"))
    assert store.claim("gpu-2", 60) is not None
    store.finish(done.id, "gpu-2", JobState.SUCCEEDED, result={"pr_number": 12})
    waiting, _ = store.enqueue(new_job("plan", repo="octo/third", command=JobCommand.PLAN))
    assert store.claim("gpu-2", 60) is not None
    store.finish(waiting.id, "gpu-2", JobState.WAITING_APPROVAL, result={"plan_posted": True})
    login(client)
    page = client.get("/admin/jobs").text

    first = _row(page, running.id)
    assert '<div class="phase">generate</div>' in first and "<td>gpu-1</td>" in first
    assert '<td class="elapsed" title="updated 2025-03-01 12:00:00 UTC">running 0 s</td>' in first
    assert "<td>1/3</td>" in first
    assert 'href="https://github.com/octo/demo/issues/7"' in first
    assert f"waits behind job {running.id[:12]}, running on this repository" in _row(page, behind.id)
    assert 'href="https://github.com/octo/other/pull/12"' in _row(page, done.id)
    assert "took " in _row(page, done.id)
    assert "waits for its plan to be approved" in _row(page, waiting.id)
    assert "gpu-1" in client.get("/admin/jobs/rows").text, "the refreshed rows carry the same columns"


def test_a_job_backing_off_says_until_when(client: TestClient, store: SqlJobStore) -> None:
    job, _ = store.enqueue(new_job("flaky"))
    assert store.claim("gpu-1", 60) is not None
    store.finish(job.id, "gpu-1", JobState.QUEUED, error="GitHub answered 502")
    login(client)
    assert "backing off after a retryable failure: tried again in 30 s" in _row(client.get("/admin/jobs").text, job.id)


def test_the_detail_shows_phases_with_durations_and_a_coloured_diff_per_file(
    client: TestClient, store: SqlJobStore, settings: Settings, clock: FakeClock
) -> None:
    job, _ = store.enqueue(new_job("diff"))
    assert store.claim("gpu-1", 60) is not None
    clock.advance(5)
    store.add_event(job.id, "phase", "checkout")
    clock.advance(65)
    store.add_event(job.id, "phase", "generate")
    clock.advance(10)
    report = {"job_id": "20250301-120000-0123abcd"}
    stored = store.get(job.id)
    assert stored is not None
    patch = patch_file(stored.model_copy(update={"result": {"report": report}}), settings.state_path())
    assert patch is not None, "the job's own patch has a place in its repository's state folder"
    patch.parent.mkdir(parents=True)
    patch.write_text(PATCH)
    store.finish(job.id, "gpu-1", JobState.SUCCEEDED, result={"report": report})
    login(client)
    page = client.get(f"/admin/jobs/{job.id}").text

    phases = re.search(r'<table class="phases" id="phases">(.*?)</table>', page, re.DOTALL)
    assert phases, "the phase table is shown"
    assert re.search(r"<td>checkout</td>.*?<td>1 min 05 s</td>", phases.group(1), re.DOTALL)
    assert re.search(r"<td>generate</td>.*?<td>10 s</td>", phases.group(1), re.DOTALL)
    assert page.count('<details class="diff-file" open>') == 2
    assert "<code>pkg/core.py</code>" in page and "<code>tests/test_core.py</code>" in page
    assert '<span class="d-add">+def assist():</span>' in page
    assert '<span class="d-del">-def helper():</span>' in page
    assert '<span class="d-hunk">@@ -0,0 +1,2 @@</span>' in page
    assert "hx-get" not in page.split('id="job-live"')[1].split(">")[0], "an ended job is not polled"


def test_split_patch_reads_plain_diffs_and_counts_lines() -> None:
    files = split_patch("--- a/a.py\n+++ b/a.py\n-x\n+y\n+z\n--- a/b.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-gone\n")
    assert [(f.path, f.added, f.removed) for f in files] == [("a.py", 2, 1), ("b.py", 0, 1)]
    assert split_patch("") == []


def test_the_live_part_polls_while_the_job_runs_and_reloads_the_page_on_a_change(
    client: TestClient, store: SqlJobStore
) -> None:
    job, _ = store.enqueue(new_job("live"))
    assert client.get(f"/admin/jobs/{job.id}/live", params={"seen": "queued"}).status_code == 303  # login first
    login(client)
    assert 'hx-trigger="every 3s"' in client.get(f"/admin/jobs/{job.id}").text
    assert store.claim("gpu-1", 60) is not None
    store.add_event(job.id, "phase", "validate")

    changed = client.get(f"/admin/jobs/{job.id}/live", params={"seen": "queued"})
    assert changed.status_code == 204 and changed.headers["hx-refresh"] == "true"
    live = client.get(f"/admin/jobs/{job.id}/live", params={"seen": "running"})
    assert live.status_code == 200 and live.text.lstrip().startswith('<div id="job-live"')
    assert '<strong id="job-phase">validate</strong>' in live.text and "so far" in live.text
    store.finish(job.id, "gpu-1", JobState.SUCCEEDED, result={})
    ended = client.get(f"/admin/jobs/{job.id}/live", params={"seen": "running"})
    assert ended.status_code == 204 and ended.headers["hx-refresh"] == "true"


def test_retry_requeues_a_failed_job_with_fresh_attempts(client: TestClient, store: SqlJobStore) -> None:
    job, _ = store.enqueue(new_job("fail"))
    assert store.claim("gpu-1", 60) is not None
    store.finish(job.id, "gpu-1", JobState.FAILED, error="the spec names no function pkg.nothing",
                 result={"status": "failed", "error": "the spec names no function", "hint": "fix the target",
                         "status_comment_id": 5})
    assert client.post(f"/admin/jobs/{job.id}/retry").status_code == 303, "signed-out: off to log in"
    csrf = login(client)
    page = client.get(f"/admin/jobs/{job.id}").text
    assert 'id="retry"' in page
    assert re.search(r'<p class="hint" id="hint">fix the target; then Retry', page)

    assert client.post(f"/admin/jobs/{job.id}/retry", data={"csrf_token": "x." + "0" * 64}).status_code == 403
    assert stored(store, job.id).state is JobState.FAILED
    done = client.post(f"/admin/jobs/{job.id}/retry", data={"csrf_token": csrf})
    assert done.status_code == 303 and done.headers["location"] == f"/admin/jobs/{job.id}"
    again = stored(store, job.id)
    assert again.state is JobState.QUEUED and again.attempts == 0 and again.error is None
    assert again.result == {"status_comment_id": 5}, "the last attempt's end is dropped, the rest kept"
    assert [e.kind for e in store.events(job.id)][-2:] == ["retried", "admin"]
    assert client.post(f"/admin/jobs/{job.id}/retry", data={"csrf_token": csrf}).status_code == 409
    assert 'id="retry"' not in client.get(f"/admin/jobs/{job.id}").text
    assert store.claim("gpu-1", 60) is not None, "the retried job can be claimed at once"


def test_a_dead_job_explains_itself_and_can_be_retried(client: TestClient, store: SqlJobStore, clock: FakeClock) -> None:
    job, _ = store.enqueue(new_job("dead", max_attempts=1))
    assert store.claim("gpu-1", 60) is not None
    clock.advance(61)
    assert store.reap_expired() == [job.id]
    assert stored(store, job.id).state is JobState.DEAD
    csrf = login(client)
    page = client.get(f"/admin/jobs/{job.id}").text
    assert "stopped heartbeating" in page and 'id="retry"' in page
    assert client.post(f"/admin/jobs/{job.id}/retry", data={"csrf_token": csrf}).status_code == 303
    assert stored(store, job.id).state is JobState.QUEUED


def test_a_spec_the_model_read_is_not_called_edited(client: TestClient, store: SqlJobStore) -> None:
    job, _ = store.enqueue(new_job("model", body="Please rename helper to assist", command=JobCommand.PLAN))
    assert store.claim("gpu-1", 60) is not None
    store.finish(job.id, "gpu-1", JobState.WAITING_APPROVAL, result={
        "plan_posted": True, EDITED_SPEC_KEY: "title: Rename\noperations: []\n", SPEC_AUTHOR_KEY: SPEC_BY_MODEL})
    login(client)
    page = client.get(f"/admin/jobs/{job.id}").text
    assert "(read by the model from the issue&#39;s text)" in page
    assert "edited" not in page.split('id="spec-origin"')[1].split("</small>")[0]


def test_retry_moves_only_failed_and_dead_jobs(store_url: str) -> None:  # noqa: F811  (the fixture)
    store = SqlJobStore(store_url)
    queued, _ = store.enqueue(new_job("q"))
    assert not store.retry(queued.id) and not store.retry("no-such-job")
    assert store.claim("w", 60) is not None
    assert not store.retry(queued.id), "a running job is not retried"
    store.finish(queued.id, "w", JobState.FAILED, error="boom", result={"status": "failed", "pr_number": 4})
    assert store.retry(queued.id)
    again = stored(store, queued.id)
    assert (again.state, again.attempts, again.error, again.result) == (JobState.QUEUED, 0, None, {"pr_number": 4})
    store.close()
