"""The job executor in local mode: real pipeline and git, comments and PRs recorded by LocalForge."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from diffusellm.config import Settings
from diffusellm.errors import ConfigError
from diffusellm.forge.base import job_marker
from diffusellm.forge.freeze import freeze
from diffusellm.forge.local import LocalForge
from diffusellm.jobs.model import Job, JobCommand, JobState
from diffusellm.pipeline.validate.sandbox import BubblewrapSandbox
from diffusellm.repo_config import (
    RepoConfig,
    effective_settings,
    parse_repo_config,
    path_violations,
)
from diffusellm.worker.execute import (
    JobFailedError,
    build_executor,
    execute_job,
    make_executor,
    sandbox_from_settings,
)
from tests.conftest import git, make_repo

FILES = {
    "src/shapes/__init__.py": '"""Shapes."""\n',
    "src/shapes/area.py": ('"""Areas."""\n\n\ndef square_area(side: float) -> float:\n'
                           '    """Area of a square."""\n    return side * side\n'),
    "tests/test_area.py": ("from shapes.area import square_area\n\n\n"
                           "def test_square() -> None:\n    assert square_area(3) == 9\n"),
}


def _spec(target: str = "shapes.area.square_area") -> str:
    return ("Rename it.\n\n```yaml\ntitle: Rename square_area\noperations:\n"
            f"  - op: rename_symbol\n    target: {target}\n    new_name: area_of_square\n```\n")


def _job(repo: Path, body: str, command: JobCommand = JobCommand.RUN) -> Job:
    request = freeze(repo_full_name=f"local:{repo}", title="Rename square_area", body=body,
                     sender="me")
    now = dt.datetime.now(dt.UTC)
    return Job(id="job-1", command=command, state=JobState.RUNNING, request=request,
               idempotency_key="k", repo_key=request.repo_full_name, created_at=now,
               updated_at=now)


class FakeProgress:
    """A ProgressSink that keeps the events; `lost` plays a cancelled job."""

    def __init__(self, lost: bool = False) -> None:
        self.events: list[str] = []
        self.lost = lost

    def event(self, kind: str, message: str, data: Mapping[str, Any] | None = None) -> None:
        self.events.append(message)

    @property
    def lease_lost(self) -> bool:
        return self.lost


def _run(settings: Settings, repo: Path, body: str, command: JobCommand = JobCommand.RUN,
         job: Job | None = None) -> tuple[dict[str, Any], LocalForge]:
    job = job or _job(repo, body, command)
    forge = LocalForge(repo, request=job.request)
    result = execute_job(job, FakeProgress(), forge=forge, settings=settings,
                         sandbox=BubblewrapSandbox())
    return result, forge


def _fail(settings: Settings, repo: Path, body: str) -> tuple[dict[str, Any], LocalForge]:
    job = _job(repo, body)
    forge = LocalForge(repo, request=job.request)
    with pytest.raises(JobFailedError) as caught:
        execute_job(job, FakeProgress(), forge=forge, settings=settings,
                    sandbox=BubblewrapSandbox())
    return caught.value.result, forge


@pytest.mark.slow
def test_local_mode_pushes_a_branch_and_records_the_pr(settings: Settings, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", FILES)

    def no_github(name: str, installation: int | None) -> LocalForge:
        raise AssertionError("local jobs need no GitHub forge")

    execute = make_executor(forges=no_github, settings=settings, sandbox=BubblewrapSandbox())
    progress = FakeProgress()
    result = execute(_job(repo, _spec()), progress)
    assert result["status"] == "succeeded", result
    assert "validating in sandbox" in progress.events
    assert "def area_of_square(" in git(repo, "show", "diffusellm/local-0:src/shapes/area.py")
    assert git(repo, "branch", "--show-current").strip() == "main"
    record = result["local"]
    (pr,) = record["pull_requests"]
    assert pr["head_branch"] == "diffusellm/local-0" and pr["draft"]
    assert job_marker("local-0") in pr["body"] and "### Plan" in pr["body"]
    assert "### Repository conventions" in pr["body"] and "- Line length: " in pr["body"]
    assert [c["conclusion"] for c in record["check_runs"]] == ["success"]
    (status,) = record["comments"]
    assert "✅ Done" in status["body"] and record["reactions"][0]["content"] == "eyes"


def test_plan_posts_the_plan_and_waits_for_approval(settings: Settings, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", FILES)
    result, forge = _run(settings, repo, _spec(), JobCommand.PLAN)
    assert result["status"] == "planned" and result["next_state"] == "waiting_approval"
    (status,) = forge.result()["comments"]
    assert "Rename `shapes.area.square_area` to `area_of_square`" in status["body"]
    assert "/diffusellm approve" in status["body"]
    assert git(repo, "branch", "--list").split() == ["*", "main"]


@pytest.mark.slow
def test_an_approved_plan_job_makes_the_change(settings: Settings, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", FILES)
    job = _job(repo, _spec(), JobCommand.PLAN)
    job.result = {"status": "planned", "plan_posted": True}  # as the store keeps it
    result, _ = _run(settings, repo, "", job=job)
    assert result["status"] == "succeeded" and result["branch"] == "diffusellm/local-0"


def test_a_lost_lease_stops_before_the_next_step(settings: Settings, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", FILES)
    job = _job(repo, _spec())
    with pytest.raises(JobFailedError, match="cancelled or taken over"):
        execute_job(job, FakeProgress(lost=True), forge=LocalForge(repo, request=job.request),
                    settings=settings, sandbox=BubblewrapSandbox())


@pytest.mark.parametrize(("config", "reason"), [
    ("draft: [not, a, bool]\n", "draft"),
    ("test_command: make test\n", "must run pytest"),
    ("surprise: 1\n", "surprise"),
    ("- a list\n", "mapping"),
])
def test_an_invalid_repository_config_is_explained(settings: Settings, tmp_path: Path,
                                                   config: str, reason: str) -> None:
    repo = make_repo(tmp_path / "repo", {**FILES, ".github/diffusellm.yml": config})
    result, forge = _fail(settings, repo, _spec())
    assert result["status"] == "failed"
    (status,) = forge.result()["comments"]
    assert ".github/diffusellm.yml" in status["body"] and reason in status["body"]
    assert "/diffusellm retry" in status["body"]


def test_a_spec_error_says_what_to_fix(settings: Settings, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", FILES)
    result, forge = _fail(settings, repo, "```yaml\ntitle: x\noperations: []\n```\n")
    assert result["status"] == "failed"
    body = forge.result()["comments"][0]["body"]
    assert "operations" in body and "Why it stopped" in body


def test_an_operation_that_cannot_be_done_is_reported(settings: Settings, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", FILES)
    result, forge = _fail(settings, repo, _spec("shapes.area.no_such_function"))
    assert result["status"] == "failed"
    body = forge.result()["comments"][0]["body"]
    assert "no_such_function" in body and "/diffusellm retry" in body
    assert "❌" in body, "the step that failed is marked"


@pytest.mark.slow
def test_blocked_paths_stop_the_push(settings: Settings, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {**FILES,
                                         ".github/diffusellm.yml": "blocked_paths: [tests/*]\n"})
    result, forge = _fail(settings, repo, _spec())
    assert result == {"status": "failed", "error": "blocked_paths",
                      "status_comment_id": result["status_comment_id"]}
    assert "tests/test_area.py (blocked by `tests/*`)" in forge.result()["comments"][0]["body"]
    assert "diffusellm/local-0" not in git(repo, "branch", "--list")


@pytest.mark.slow
def test_agents_md_paths_not_to_edit_stop_the_push(settings: Settings, tmp_path: Path) -> None:
    agents = "# For agents\n\nNever edit `tests/test_area.py` by hand.\nRun `uv run pytest -q` first.\n"
    repo = make_repo(tmp_path / "repo", {**FILES, "AGENTS.md": agents})
    result, forge = _fail(settings, repo, _spec())
    assert result["error"] == "blocked_paths"
    body = forge.result()["comments"][0]["body"]
    assert "tests/test_area.py (blocked by `tests/test_area.py`)" in body
    assert ("from the repository's instructions: test command `pytest -q` from AGENTS.md line 4; "
            "blocked path `tests/test_area.py` from AGENTS.md line 3") in body


def test_repo_config_paths_and_test_command(settings: Settings) -> None:
    config = parse_repo_config("allowed_paths: [src/*]\ntest_command: python -m pytest -x tests\n")
    assert path_violations(config, ["src/a/b.py", "docs/x.md", ".github/workflows/ci.yml"]) == [
        "docs/x.md (not under allowed_paths)", ".github/workflows/ci.yml (blocked by `.github/*`)"]
    adjusted = effective_settings(settings, config)
    assert adjusted.validation.pytest_args == ["-p", "no:cacheprovider", "-x", "tests"]
    assert effective_settings(settings, RepoConfig()) is settings
    assert parse_repo_config(None) == RepoConfig() == parse_repo_config("\n")


def test_repo_config_may_narrow_the_required_checks_and_set_up_its_environment(settings: Settings) -> None:
    assert settings.validation.require == ["pytest"]
    config = parse_repo_config("require: []\nsetup: ['pip install -e .[test]']\npython: '3.12'\n")
    assert effective_settings(settings, config).validation.require == []
    assert (config.setup, config.python) == (["pip install -e .[test]"], "3.12")
    for bad in ("require: [mypy]\n", "python: '12'\n", "setup: ''\n"):
        with pytest.raises(ConfigError, match="is invalid"):
            parse_repo_config(bad)


def test_secrets_cannot_be_passed_into_the_sandbox(settings: Settings) -> None:
    leaky = settings.model_copy(update={"sandbox": settings.sandbox.model_copy(
        update={"pass_env": ["LANGUAGE", "PRIVATE_KEY", "DIFFUSELLM_GIT_TOKEN"]})})
    with pytest.raises(ConfigError, match="DIFFUSELLM_GIT_TOKEN, PRIVATE_KEY"):
        sandbox_from_settings(leaky, {"PRIVATE_KEY": "x"})
    fine = settings.model_copy(update={"sandbox": settings.sandbox.model_copy(
        update={"pass_env": ["LANGUAGE"]})})
    assert isinstance(sandbox_from_settings(fine, {"LANGUAGE": "en"}), BubblewrapSandbox)


def test_a_worker_without_app_credentials_runs_only_local_jobs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    for name in ("APP_ID", "PRIVATE_KEY", "PRIVATE_KEY_PATH", "DIFFUSELLM_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DIFFUSELLM_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("HOME", str(tmp_path))
    execute = build_executor()
    job = _job(tmp_path, _spec()).model_copy(
        update={"request": freeze(repo_full_name="octo/repo", title="t", body="b")})
    with pytest.raises(ConfigError, match="APP_ID is not set"):
        execute(job, FakeProgress())
