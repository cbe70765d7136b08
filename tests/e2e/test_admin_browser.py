"""Admin pages in a real headless Chromium: log in, watch the list refresh, open a job, approve it."""

from __future__ import annotations

from pathlib import Path

import pytest

from diffusellm.app.main import build_app
from diffusellm.config import load_settings
from diffusellm.jobs.model import JobCommand, JobState
from diffusellm.jobs.store import SqlJobStore
from tests.jobs.support import AppServer, new_job

playwright_sync = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
TOKEN = "browser-test-admin-token-0123456789"
SPEC = "```yaml\ntitle: Rename helper\noperations:\n  - op: rename_symbol\n    target: pkg.helper\n    new_name: assist\n```\n"

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")


def _seed(store: SqlJobStore) -> str:
    """A PLAN job waiting for approval, and a queued job whose title tries to run a script."""
    job, _ = store.enqueue(new_job("plan", title="Rename helper", body=SPEC, command=JobCommand.PLAN))
    claimed = store.claim("gpu-1", 60)
    assert claimed is not None and claimed.id == job.id
    assert store.finish(job.id, "gpu-1", JobState.WAITING_APPROVAL,
                        result={"status": "planned", "plan_posted": True})
    store.enqueue(new_job("xss", repo="octo/other", title='<img src=x onerror="alert(1)"><script>alert(2)</script>'))
    return job.id


def test_log_in_open_a_waiting_job_and_approve_it(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'jobs.sqlite'}"
    settings = load_settings(None, [f"state_dir={tmp_path / 'state'}", "validation.environment.build=false", "server.in_process_worker=false",
                                    f"store.url={db}"])
    seed_store = SqlJobStore(db)
    waiting_id = _seed(seed_store)
    app = build_app(settings, {"DIFFUSELLM_ADMIN_TOKEN": TOKEN})
    dialogs: list[str] = []
    console_errors: list[str] = []
    with AppServer(app) as server, playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)

            page.goto(f"{server.url}/admin/jobs")
            assert page.url.endswith("/admin/login"), "the job list needs a login"
            page.fill("#token", "not-the-token")
            page.click("button[type=submit]")
            assert "not right" in page.inner_text("main")
            page.fill("#token", TOKEN)
            page.click("button[type=submit]")
            page.wait_for_url("**/admin/jobs")
            assert page.locator(f'tr[data-job="{waiting_id}"]').inner_text().count("waiting_approval") == 1
            assert page.evaluate("typeof htmx") == "object", "htmx loads from /admin/static"

            late, _ = seed_store.enqueue(new_job("late", repo="octo/late", title="Arrived later"))
            page.wait_for_selector(f'tr[data-job="{late.id}"]', timeout=20_000)  # htmx refresh

            page.click(f'tr[data-job="{waiting_id}"] a')
            page.wait_for_url(f"**/admin/jobs/{waiting_id}")
            assert page.inner_text("#job-state") == "waiting_approval"
            assert "new_name: assist" in page.inner_text("#spec")
            page.click("#approve")
            page.wait_for_url(f"**/admin/jobs/{waiting_id}")
            assert page.inner_text("#job-state") == "queued"
            assert page.locator("#approve").count() == 0
            page.screenshot(path=str(tmp_path / "approved.png"), full_page=True)
        finally:
            browser.close()
    job = seed_store.get(waiting_id)
    assert job is not None and job.state is JobState.QUEUED
    assert dialogs == [], "user text ran as script"
    assert not [e for e in console_errors if "Content Security Policy" in e], console_errors
    assert (tmp_path / "approved.png").stat().st_size > 1000
    seed_store.close()
