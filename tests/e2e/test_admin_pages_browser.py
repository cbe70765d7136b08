"""The training and job pages in a real headless Chromium, with data: the charts draw every point, a
file's diff collapses, the live part follows a running job, and Retry queues a failed job again.

Screenshots land in the test's tmp_path (training.png, job.png) for a person to look at."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from diffusellm.app.admin.views import patch_file
from diffusellm.app.main import build_app
from diffusellm.config import Settings, load_settings
from diffusellm.jobs.model import JobState
from diffusellm.jobs.store import SqlJobStore
from diffusellm.learn.core_predictor import PREDICTOR_FILE, train_core_predictor
from diffusellm.learn.outcomes import OutcomeStore
from diffusellm.pipeline.job import RunReport
from tests.app.test_admin_jobs import PATCH
from tests.e2e.test_admin_browser import CHROMIUM, CHROMIUM_ARGS
from tests.jobs.support import AppServer, FakeClock, new_job

playwright_sync = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")

TOKEN = "browser-test-admin-token-0123456789"
COLOURS = {"accepted": "#1a7f37", "rejected": "#cf222e", "open": "#bf8700", "diffusion": "#8250df",
           "llm": "#0969da"}
CURVES = ["#0969da", "#cf222e"]
EDIT = {"op": "edit_function", "target": "pkg.core.helper", "instruction": "return two"}
_POINTS_JS = """name => {
  const u = window.diffusellmCharts[name];
  if (!u) return null;
  const series = [];
  for (let s = 1; s < u.series.length; s++) {
    const points = [];
    for (let i = 0; i < u.data[0].length; i++) {
      const v = u.data[s][i];
      if (v == null) continue;
      const x = Math.round(u.valToPos(u.data[0][i], "x", true));
      const y = Math.round(u.valToPos(v, u.series[s].scale, true));
      points.push(Array.from(u.ctx.getImageData(x, y, 1, 1).data));
    }
    series.push({label: u.series[s].label, points: points});
  }
  return {width: u.width, series: series};
}"""


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _near(pixel: list[int], colour: str) -> bool:
    return pixel[3] > 200 and all(abs(a - b) < 40 for a, b in zip(pixel[:3], _rgb(colour), strict=True))


def _settings(tmp_path: Path) -> Settings:
    return load_settings(None, [f"state_dir={tmp_path / 'state'}", "server.in_process_worker=false",
                                f"store.url=sqlite:///{tmp_path / 'jobs.sqlite'}"])


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[tuple[Any, list[str]]]:
    """A Chromium page and the console errors it logged."""
    with playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            yield page, errors
        finally:
            browser.close()


def _log_in(page: Any, url: str) -> None:
    page.goto(f"{url}/admin/login")
    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url("**/admin/jobs")


def _seed_learning(store: SqlJobStore, clock: FakeClock, state: Path) -> None:
    """Eight pull requests over four days, written by both cores; two adapters; a core predictor."""
    verdicts = ["accepted", "rejected", None, "accepted", "accepted", None, "rejected", "accepted"]
    for n, verdict in enumerate(verdicts):
        job, _ = store.enqueue(new_job(f"pr-{n}", repo=f"octo/repo{n % 2}"))
        assert store.claim(f"gpu-{n % 2}", 60) is not None
        report = {"core": "diffusion" if n % 3 else "llm", "status": "succeeded" if n % 4 else "validation_failed"}
        store.finish(job.id, f"gpu-{n % 2}", JobState.SUCCEEDED, result={"pr_number": n + 1, "report": report})
        if verdict:
            store.record_verdict(job.id, verdict, f"pull request #{n + 1}")
        clock.advance(12 * 3600)
    memory = OutcomeStore.in_state(state)
    for n in range(10):
        report = {"job_id": f"run-{n}", "repo": "/r", "base_commit": "0" * 40,
                  "status": "succeeded" if n % 3 else "generation_failed", "branch": None, "commit": None,
                  "changed_files": [], "changelog": None, "validation": {}, "summary_path": "", "patch_path": "",
                  "spec": {"title": f"Edit {n}", "operations": [EDIT]}, "core": "diffusion" if n % 2 else "llm"}
        memory.record(RunReport.model_validate(report))
    train_core_predictor(memory.outcomes(), min_examples=4).save(state / "learn" / PREDICTOR_FILE)
    for name, examples, scale, warnings in (
        ("20261120-090000", 1, 1.0, ["only 1 training example(s): below 20 an adapter mostly memorises them",
                                     "1 of 1 example replies are trivial bodies (pass, ..., return None)"]),
        ("20261126-080000", 24, 1.6, []),
    ):
        folder = state / "learn" / "adapters" / name
        folder.mkdir(parents=True)
        losses = [round(scale * (2.5 * 0.93 ** step + 0.2), 4) for step in range(40)]
        (folder / "training.json").write_text(json.dumps({
            "date": f"{name[:4]}-{name[4:6]}-{name[6:8]}T09:00:00+00:00", "base_model": "embedded:smollm2-135m",
            "examples": examples, "steps": 40, "first_loss": losses[0], "last_loss": losses[-1], "seconds": 30.5,
            "losses": losses, "warnings": warnings}))


def test_the_training_page_draws_every_point_of_its_charts(tmp_path: Path, browser_page: tuple[Any, list[str]]) -> None:
    settings = _settings(tmp_path)
    clock = FakeClock(dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC))
    seed = SqlJobStore(settings.store.url, clock=clock)
    _seed_learning(seed, clock, settings.state_path())
    page, errors = browser_page
    with AppServer(build_app(settings, {"DIFFUSELLM_ADMIN_TOKEN": TOKEN})) as server:
        _log_in(page, server.url)
        page.goto(f"{server.url}/admin/learn")
        page.wait_for_function("window.diffusellmCharts && Object.keys(window.diffusellmCharts).length === 3")
        page.screenshot(path=str(tmp_path / "training.png"), full_page=True)
        charts = {name: page.evaluate(_POINTS_JS, name) for name in ("prs", "cores", "loss")}
        text = page.inner_text("main")
    seed.close()

    prs = charts["prs"]
    assert [s["label"] for s in prs["series"]] == ["accepted", "rejected", "open"]
    assert all(len(s["points"]) == 4 for s in prs["series"]), "one point a day over four days"
    loss = charts["loss"]
    assert [s["label"] for s in loss["series"]] == ["20261120-090000", "20261126-080000"]
    assert all(len(s["points"]) == 40 for s in loss["series"])
    for name, chart in charts.items():
        assert chart["width"] >= 320, name
        colours = CURVES if name == "loss" else [COLOURS[s["label"]] for s in chart["series"]]
        for series, colour in zip(chart["series"], colours, strict=True):
            painted = [any(_near(p, c) for c in colours) for p in series["points"]]
            assert all(painted), f"{name}/{series['label']}: a point was not drawn"
            assert any(_near(p, colour) for p in series["points"]), f"{name}/{series['label']} is not visible"
    assert "only 1 training example(s)" in text and "trivial bodies" in text
    assert "Picks, per job, the core likelier to validate" in text
    assert "% of 5" in text, "the predictor's accuracy on each core's remembered runs"
    assert "This app runs no in-process worker." in text and "octo/repo1" in text
    assert not [e for e in errors if "Content Security Policy" in e], errors
    assert (tmp_path / "training.png").stat().st_size > 20_000


def test_a_job_page_follows_the_job_collapses_its_diff_and_retries_it(
    tmp_path: Path, browser_page: tuple[Any, list[str]]
) -> None:
    settings = _settings(tmp_path)
    seed = SqlJobStore(settings.store.url)
    job, _ = seed.enqueue(new_job("browse"))
    assert seed.claim("gpu-1", 600) is not None
    seed.add_event(job.id, "phase", "checkout")
    report = {"job_id": "20250301-120000-0123abcd"}
    claimed = seed.get(job.id)
    assert claimed is not None
    patch = patch_file(claimed.model_copy(update={"result": {"report": report}}), settings.state_path())
    assert patch is not None, "the job's own patch has a place in its repository's state folder"
    patch.parent.mkdir(parents=True)
    patch.write_text(PATCH)
    page, errors = browser_page
    with AppServer(build_app(settings, {"DIFFUSELLM_ADMIN_TOKEN": TOKEN})) as server:
        queued, _ = seed.enqueue(new_job("next", title="Waits its turn"))
        _log_in(page, server.url)
        assert "checkout" in page.inner_text(f'tr[data-job="{job.id}"]')
        assert "waits behind job" in page.inner_text(f'tr[data-job="{queued.id}"]')
        page.screenshot(path=str(tmp_path / "jobs.png"), full_page=True)
        page.goto(f"{server.url}/admin/jobs/{job.id}")
        assert page.inner_text("#job-phase") == "checkout"
        seed.add_event(job.id, "phase", "generate")
        page.locator("#job-phase", has_text="generate").wait_for(timeout=20_000)  # polled, no reload

        seed.finish(job.id, "gpu-1", JobState.FAILED, error="validation failed: tests/test_core.py::test_x",
                    result={"status": "failed", "report": report})
        page.wait_for_selector("#retry", timeout=20_000)  # the page reloaded itself on the state change
        assert page.inner_text("#job-state") == "failed" and "then Retry" in page.inner_text("#hint")
        first = page.locator("details.diff-file").first
        assert first.evaluate("d => d.open") and first.locator("pre").is_visible()
        assert first.locator("span.d-add").first.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(218, 251, 225)"
        page.screenshot(path=str(tmp_path / "job.png"), full_page=True)
        first.locator("summary").click()
        assert not first.evaluate("d => d.open") and not first.locator("pre").is_visible()

        page.click("#retry")
        page.wait_for_url(f"**/admin/jobs/{job.id}")
        assert page.inner_text("#job-state") == "queued" and page.locator("#retry").count() == 0
    after = seed.get(job.id)
    assert after is not None and after.state is JobState.QUEUED and after.attempts == 0
    assert not [e for e in errors if "Content Security Policy" in e], errors
    seed.close()
