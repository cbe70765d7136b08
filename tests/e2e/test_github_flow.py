"""End to end on the GitHub double: labelled issue → webhook → job → pipeline → branch, draft PR."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from diffusellm.app.inbox import SpoolInbox
from diffusellm.app.router import EventRouter
from diffusellm.app.triage import TriageContext, register
from diffusellm.app.webhooks import PATH, webhook_router
from diffusellm.config import Settings
from diffusellm.forge.base import job_marker
from diffusellm.forge.github_auth import TRIAGE_PERMISSIONS
from diffusellm.forge.github_settings import GitHubSettings
from diffusellm.jobs.model import Job, JobCommand, JobState
from diffusellm.jobs.store import SqlJobStore
from diffusellm.jobs.wire import Outcome
from diffusellm.learn.outcomes import OutcomeStore
from diffusellm.learn.verdicts import sync_forge
from diffusellm.pipeline.job import Models
from diffusellm.pipeline.settings import GenerationSettings, PlanOptions
from diffusellm.pipeline.validate.sandbox import BubblewrapSandbox, Limits, SandboxResult
from diffusellm.pipeline.validate.settings import EnvironmentSettings, ValidationSettings
from diffusellm.worker.execute import make_executor
from diffusellm.worker.loop import StoreSource, run_one
from tests.conftest import make_repo
from tests.fakes.github_double import GitHubDouble, app_for, fast_settings, serve
from tests.fakes.github_resources import IssueRec, RepoRec
from tests.fakes.scripted_llm import ScriptedLLM
from tests.fakes.webhook_payloads import comment_created, delivery, labeled, pull_request_closed, review_submitted

pytestmark = pytest.mark.slow

SECRET = "e2e-secret"
FILES = {
    "pyproject.toml": '[project]\nname = "shapes"\nversion = "0.1.0"\n',
    "src/shapes/__init__.py": '"""Shapes."""\n',
    "src/shapes/area.py": (
        '"""Areas of shapes."""\n\n\ndef square_area(side: float) -> float:\n'
        '    """Area of a square."""\n    return side * side\n\n\n'
        "def total_area(sides: list[float]) -> float:\n"
        '    """Sum of square areas."""\n    return sum(square_area(s) for s in sides)\n'
    ),
    "tests/test_area.py": (
        "from shapes.area import square_area, total_area\n\n\n"
        "def test_square() -> None:\n    assert square_area(2) == 4\n\n\n"
        "def test_total() -> None:\n    assert total_area([1, 2]) == 5\n"
    ),
}
ISSUE_BODY = (
    "`square_area` reads badly next to our other names.\r\n\r\n"
    "<!-- maintainers: keep this block valid -->\r\n"
    "```yaml\r\ntitle: Rename square_area to area_of_square\r\noperations:\r\n"
    "  - op: rename_symbol\r\n    target: shapes.area.square_area\r\n"
    "    new_name: area_of_square\r\n```\r\n"
)


class RecordingSandbox:
    """The real bubblewrap sandbox, remembering every environment it was handed."""

    def __init__(self) -> None:
        self.inner = BubblewrapSandbox()
        self.envs: list[dict[str, str]] = []

    def run(self, argv: Sequence[str], *, workdir: Path, env: Mapping[str, str] | None = None,
            limits: Limits | None = None, ro_paths: Sequence[Path] = (), network: bool = False) -> SandboxResult:
        self.envs.append(dict(env or {}))
        return self.inner.run(argv, workdir=workdir, env=env, limits=limits, ro_paths=ro_paths, network=network)


class Flow:
    """The app (webhooks + triage) and one worker (the job loop), sharing a SQLite job store."""

    def __init__(self, double: GitHubDouble, repo: RepoRec, tmp_path: Path, models: Models | None = None) -> None:
        self.double, self.repo = double, repo
        self.store = SqlJobStore(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
        self.options: GitHubSettings = fast_settings(double)
        triage_app = app_for(double, self.options, permissions=TRIAGE_PERMISSIONS)
        ctx = TriageContext(store=self.store, settings=self.options, forges=triage_app.forge)
        app = FastAPI()
        app.include_router(webhook_router(store=self.store, secret=SECRET,
                                          events=register(EventRouter(), ctx),
                                          inbox=SpoolInbox(tmp_path / "inbox")))
        self.client = TestClient(app)
        self.sandbox = RecordingSandbox()
        self.execute = make_executor(forges=app_for(double, self.options).forge,
                                     settings=Settings(state_dir=tmp_path / "state", validation=ValidationSettings(
                                         environment=EnvironmentSettings(build=False))),  # no network in tests
                                     sandbox=self.sandbox, options=self.options, models=models)

    def deliver(self, event: str, payload: dict[str, Any]) -> None:
        body, headers = delivery(event, payload, SECRET)
        answer = self.client.post(PATH, content=body, headers=headers)
        assert answer.status_code == 202 and answer.json()["status"] == "accepted"

    def work(self) -> tuple[Outcome, Job]:
        """Claim the next job and run it through the worker loop; the outcome and stored job."""
        job = self.store.claim("worker-1", 600)
        assert job is not None, "nothing was queued"
        source = StoreSource(self.store, lease_seconds=600, heartbeat_seconds=60)
        outcome = run_one(source, self.execute, job, worker_id="worker-1", heartbeat_seconds=60)
        assert outcome is not None
        stored = self.store.get(job.id)
        assert stored is not None
        return outcome, stored

    def phases(self, job: Job) -> list[str]:
        return [e.message for e in self.store.events(job.id) if e.kind == "phase"]

    def bot_comments(self, number: int) -> list[str]:
        return [c.body for c in self.double.comments_on(self.repo, number)
                if c.user == self.double.bot_login]

    def show(self, ref: str, path: str) -> str:
        return subprocess.run(["git", "-C", str(self.repo.bare), "show", f"{ref}:{path}"],
                              capture_output=True, text=True, check=True).stdout


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[GitHubDouble, RepoRec, IssueRec]]:
    with serve(tmp_path / "github") as double:
        src = make_repo(tmp_path / "src", FILES, message="Add area helpers")
        repo = double.add_repo("Codertocat", "Hello-World", src)
        double.set_role(repo, "maintainer", "maintain")
        double.set_role(repo, "helper", "triage")
        issue = double.add_issue(repo, "Rename square_area", ISSUE_BODY, "reporter")
        yield double, repo, issue
        assert double.violations == [], "requests or responses off GitHub's OpenAPI description"


def _assert_one_pr_one_branch(flow: Flow, issue: IssueRec) -> None:
    double, repo = flow.double, flow.repo
    assert double.branches(repo) == ["diffusellm/issue-1", "main"]
    (pr,) = double.pulls(repo)
    assert pr.pull is not None and pr.pull.draft and pr.user == double.bot_login
    assert (pr.pull.head, pr.pull.base) == ("diffusellm/issue-1", "main")
    assert pr.title == "Rename square_area to area_of_square", "the commit subject, not the issue title"
    for part in (f"Closes #{issue.number}", job_marker("issue-1"), "### Validation", "### Plan",
                 "Rename `shapes.area.square_area` to `area_of_square`"):
        assert part in pr.body
    area = flow.show("diffusellm/issue-1", "src/shapes/area.py")
    assert "def area_of_square(" in area and "square_area(" not in area
    assert "area_of_square" in flow.show("diffusellm/issue-1", "tests/test_area.py")
    (status,) = flow.bot_comments(issue.number)
    assert job_marker("issue-1") in status and "- [x] Push the branch" in status
    assert "✅ Done" in status
    head = double.branch_sha(repo, "diffusellm/issue-1")
    runs = [r for r in repo.check_runs.values() if r.head_sha == head]
    assert [(r.name, r.conclusion) for r in runs] == [("diffusellm", "success")]
    assert "No new failures" in runs[0].output["title"]


def test_labelled_issue_becomes_one_draft_pr_and_a_retry_reuses_it(
    world: tuple[GitHubDouble, RepoRec, IssueRec], tmp_path: Path,
) -> None:
    double, repo, issue = world
    flow = Flow(double, repo, tmp_path)
    flow.deliver("issues", labeled(double, repo, issue, "diffusellm", "maintainer"))
    outcome, job = flow.work()
    assert (outcome.state, job.state) == ("succeeded", JobState.SUCCEEDED), outcome.error
    _assert_one_pr_one_branch(flow, issue)
    assert {"target": "issue-1", "content": "eyes"}.items() <= repo.reactions[0].items()
    assert "validating in sandbox" in flow.phases(job)
    first = job.result

    retry = double.add_comment(repo, issue.number, "maintainer", "/diffusellm retry")
    flow.deliver("issue_comment", comment_created(double, repo, issue, retry))
    outcome, job = flow.work()
    assert outcome.state == "succeeded", outcome.error
    second = job.result
    assert second["pr_number"] == first["pr_number"] and second["branch"] == first["branch"]
    _assert_one_pr_one_branch(flow, issue)
    assert len(flow.store.list_jobs()) == 2

    tokens = [t.value for t in double.tokens.values()]
    seen = [v for env in flow.sandbox.envs for v in env.values()]
    assert flow.sandbox.envs and not any(t in v for t in tokens for v in seen)
    assert not any(t in os.environ.values() for t in tokens)
    config = next((tmp_path / "state" / "forges").rglob(".git/config")).read_text()
    assert not any(t in config for t in tokens)


def test_an_issue_edited_after_the_label_is_not_run(
    world: tuple[GitHubDouble, RepoRec, IssueRec], tmp_path: Path,
) -> None:
    double, repo, issue = world
    flow = Flow(double, repo, tmp_path)
    flow.deliver("issues", labeled(double, repo, issue, "diffusellm", "maintainer"))
    issue.body = issue.body.replace("area_of_square", "delete_everything")
    outcome, job = flow.work()
    assert job.state == JobState.FAILED and "text_changed" in (outcome.error or "")
    (status,) = flow.bot_comments(issue.number)
    assert "the issue changed" in status and "/diffusellm run" in status
    assert double.branches(repo) == ["main"] and double.pulls(repo) == []


def test_an_issue_without_a_yaml_block_gets_a_concrete_request(
    world: tuple[GitHubDouble, RepoRec, IssueRec], tmp_path: Path,
) -> None:
    double, repo, _ = world
    issue = double.add_issue(repo, "Make names nicer", "Please tidy the names up.", "reporter")
    flow = Flow(double, repo, tmp_path)
    flow.deliver("issues", labeled(double, repo, issue, "diffusellm", "maintainer"))
    outcome, job = flow.work()
    assert job.state == JobState.FAILED and "no_spec" in (outcome.error or "")
    (status,) = flow.bot_comments(issue.number)
    assert "```yaml" in status and "op: rename_symbol" in status
    assert 'title: "Make names nicer"' in status
    assert double.branches(repo) == ["main"]


def test_label_from_a_triage_user_is_refused_over_the_real_api(
    world: tuple[GitHubDouble, RepoRec, IssueRec], tmp_path: Path,
) -> None:
    double, repo, issue = world
    flow = Flow(double, repo, tmp_path)
    flow.deliver("issues", labeled(double, repo, issue, "diffusellm", "helper"))
    assert flow.store.list_jobs() == []
    (reply,) = flow.bot_comments(issue.number)
    assert "@helper has `triage` permission" in reply


def test_changes_requested_review_adds_a_commit_to_the_same_pr(
    world: tuple[GitHubDouble, RepoRec, IssueRec], tmp_path: Path,
) -> None:
    double, repo, issue = world
    flow = Flow(double, repo, tmp_path)
    flow.deliver("issues", labeled(double, repo, issue, "diffusellm", "maintainer"))
    assert flow.work()[0].state == "succeeded"
    (pr,) = double.pulls(repo)
    before = double.branch_sha(repo, "diffusellm/issue-1")
    review = ("@diffusellm-test please also rename the total:\n\n```yaml\n"
              "title: Rename total_area to sum_of_areas\noperations:\n"
              "  - op: rename_symbol\n    target: shapes.area.total_area\n"
              "    new_name: sum_of_areas\n```\n")
    flow.deliver("pull_request_review", review_submitted(
        double, repo, pr, state="changes_requested", body=review, reviewer="maintainer"))
    outcome, job = flow.work()
    assert outcome.state == "succeeded", outcome.error
    assert job.command == JobCommand.REVISE and job.result["pr_number"] == pr.number
    assert double.pulls(repo) == [pr]
    area = flow.show("diffusellm/issue-1", "src/shapes/area.py")
    assert "def sum_of_areas(" in area and "def area_of_square(" in area
    log = subprocess.run(["git", "-C", str(repo.bare), "rev-list", "diffusellm/issue-1"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert before in log, "the revision builds on the PR's commit instead of replacing it"
    (status,) = flow.bot_comments(pr.number)
    assert "✅ Done" in status


def test_plan_then_approve_runs_the_planned_text(
    world: tuple[GitHubDouble, RepoRec, IssueRec], tmp_path: Path,
) -> None:
    double, repo, issue = world
    flow = Flow(double, repo, tmp_path)
    plan = double.add_comment(repo, issue.number, "maintainer", "/diffusellm plan")
    flow.deliver("issue_comment", comment_created(double, repo, issue, plan))
    outcome, job = flow.work()
    assert (outcome.state, job.state) == ("waiting_approval", JobState.WAITING_APPROVAL)
    (status,) = flow.bot_comments(issue.number)
    assert "### Plan" in status and "/diffusellm approve" in status
    assert double.pulls(repo) == []

    approve = double.add_comment(repo, issue.number, "maintainer", "/diffusellm approve")
    flow.deliver("issue_comment", comment_created(double, repo, issue, approve))
    assert "is queued again" in flow.bot_comments(issue.number)[-1]
    outcome, again = flow.work()
    assert again.id == job.id and outcome.state == "succeeded", outcome.error
    (pr,) = double.pulls(repo)
    assert f"Closes #{issue.number}" in pr.body


@pytest.mark.parametrize(("merged", "verdict"), [(True, "accepted"), (False, "rejected")])
def test_closing_the_pr_gives_the_workers_remembered_run_its_verdict(
    world: tuple[GitHubDouble, RepoRec, IssueRec], tmp_path: Path, merged: bool, verdict: str,
) -> None:
    """The worker remembers the run (learning loop); the app records the verdict when the PR is closed;
    the worker's `learn sync` takes it (here straight from the store, as the worker API would answer)."""
    double, repo, issue = world
    flow = Flow(double, repo, tmp_path)
    flow.deliver("issues", labeled(double, repo, issue, "diffusellm", "maintainer"))
    outcome, job = flow.work()
    assert outcome.state == "succeeded", outcome.error
    memory = OutcomeStore.in_state(tmp_path / "state")
    (remembered,) = memory.outcomes()
    assert (remembered.forge_job, remembered.branch, remembered.verdict) == (job.id, "diffusellm/issue-1", "pending")

    (pull,) = double.pulls(repo)
    flow.deliver("pull_request", pull_request_closed(double, repo, pull, merged=merged, sender="maintainer"))
    stored = flow.store.get(job.id)
    assert stored is not None and stored.result["verdict"] == verdict

    def ask(job_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        found = (flow.store.get(j) for j in job_ids)
        return {j.id: (j.result["verdict"], j.result["verdict_source"]) for j in found if j and "verdict" in j.result}

    (decided,) = sync_forge(memory, ask)
    assert (decided.job_id, decided.verdict) == (remembered.job_id, verdict)
    assert decided.verdict_source == f"pull request #{pull.number} {'merged' if merged else 'closed without merging'}"
    assert sync_forge(memory, ask) == []


def _free_text_models(llm: ScriptedLLM) -> Models:
    """A worker that reads free text with a scripted model (a test fake) and asks it for no extra plans."""
    generation = GenerationSettings(localise="overlap", plan=PlanOptions(candidates=0))
    return Models(llm=llm, generation=generation)


def test_a_free_text_issue_becomes_a_pull_request_on_a_worker_with_a_model(
    world: tuple[GitHubDouble, RepoRec, IssueRec], tmp_path: Path,
) -> None:
    double, repo, _ = world
    body = "`square_area` reads badly next to our other names. Please rename `square_area` to `area_of_square`."
    issue = double.add_issue(repo, "Rename square_area", body, "reporter")
    llm = ScriptedLLM()
    flow = Flow(double, repo, tmp_path, models=_free_text_models(llm))
    flow.deliver("issues", labeled(double, repo, issue, "diffusellm", "maintainer"))
    outcome, job = flow.work()
    assert (outcome.state, job.state) == ("succeeded", JobState.SUCCEEDED), outcome.error
    assert "def area_of_square(" in flow.show("diffusellm/issue-2", "src/shapes/area.py")
    (pr,) = double.pulls(repo)
    assert pr.pull is not None and "Rename `shapes.area.square_area` to `area_of_square`" in pr.body
    assert pr.title == "Rename square_area to area_of_square", "what was changed (the commit subject)"
    assert {c.kind for c in llm.calls} <= {"score"}, "a plainly stated rename is read without generating"
    assert "free text, read by the model" in flow.bot_comments(issue.number)[0]


def test_a_vague_free_text_issue_gets_the_models_question(
    world: tuple[GitHubDouble, RepoRec, IssueRec], tmp_path: Path,
) -> None:
    double, repo, _ = world
    issue = double.add_issue(repo, "Make names nicer", "Please tidy the names up.", "reporter")
    flow = Flow(double, repo, tmp_path, models=_free_text_models(ScriptedLLM()))
    flow.deliver("issues", labeled(double, repo, issue, "diffusellm", "maintainer"))
    outcome, job = flow.work()
    assert job.state == JobState.FAILED and "needs_clarification" in (outcome.error or "")
    (status,) = flow.bot_comments(issue.number)
    assert "I need to know more" in status and "I could not tell which change this issue asks for" in status
    assert "`shapes.area." in status, "the question names the likeliest code"
    assert double.branches(repo) == ["main"] and double.pulls(repo) == []


def test_a_spec_whose_code_the_model_writes_runs_on_a_worker_with_a_model(
    world: tuple[GitHubDouble, RepoRec, IssueRec], tmp_path: Path,
) -> None:
    double, repo, _ = world
    body = (
        "```yaml\ntitle: Square area as a power\noperations:\n  - op: edit_function\n"
        "    target: shapes.area.square_area\n    instruction: compute the area as side ** 2\n```\n"
    )
    issue = double.add_issue(repo, "Square area as a power", body, "reporter")
    llm = ScriptedLLM(replies=["return side ** 2"])
    flow = Flow(double, repo, tmp_path, models=_free_text_models(llm))
    flow.deliver("issues", labeled(double, repo, issue, "diffusellm", "maintainer"))
    outcome, job = flow.work()
    assert (outcome.state, job.state) == ("succeeded", JobState.SUCCEEDED), outcome.error
    area = flow.show("diffusellm/issue-2", "src/shapes/area.py")
    assert 'def square_area(side: float) -> float:\n    """Area of a square."""\n    return side**2\n' in area  # formatted by ruff like the rest
    assert "compute the area as side ** 2" in llm.of_kind("generate")[0].prompt


def test_planning_a_free_text_issue_shows_the_spec_and_approval_runs_exactly_that(
    world: tuple[GitHubDouble, RepoRec, IssueRec], tmp_path: Path,
) -> None:
    double, repo, _ = world
    body = "Please rename `square_area` to `area_of_square`; it reads badly next to our other names."
    issue = double.add_issue(repo, "Rename square_area", body, "reporter")
    flow = Flow(double, repo, tmp_path, models=_free_text_models(ScriptedLLM()))
    plan = double.add_comment(repo, issue.number, "maintainer", "/diffusellm plan")
    flow.deliver("issue_comment", comment_created(double, repo, issue, plan))
    outcome, job = flow.work()
    assert (outcome.state, job.state) == ("waiting_approval", JobState.WAITING_APPROVAL), outcome.error
    (status,) = flow.bot_comments(issue.number)
    assert "### Plan" in status and "area_of_square" in status and "/diffusellm approve" in status
    assert "target: shapes.area.square_area" in job.result["edited_spec"]
    assert job.result["spec_author"] == "model", "the admin page says the model read it, not that someone edited it"
    assert double.pulls(repo) == [] and double.branches(repo) == ["main"]

    approve = double.add_comment(repo, issue.number, "maintainer", "/diffusellm approve")
    flow.deliver("issue_comment", comment_created(double, repo, issue, approve))
    outcome, again = flow.work()
    assert again.id == job.id and outcome.state == "succeeded", outcome.error
    assert "def area_of_square(" in flow.show("diffusellm/issue-2", "src/shapes/area.py")


def test_a_revision_in_plain_words_adds_a_commit_to_the_same_pr(
    world: tuple[GitHubDouble, RepoRec, IssueRec], tmp_path: Path,
) -> None:
    double, repo, issue = world
    flow = Flow(double, repo, tmp_path, models=_free_text_models(ScriptedLLM()))
    flow.deliver("issues", labeled(double, repo, issue, "diffusellm", "maintainer"))
    assert flow.work()[0].state == "succeeded"
    (pr,) = double.pulls(repo)
    review = "@diffusellm-test looks good, but please rename `total_area` to `sum_of_areas` too."
    flow.deliver("pull_request_review", review_submitted(
        double, repo, pr, state="changes_requested", body=review, reviewer="maintainer"))
    outcome, job = flow.work()
    assert outcome.state == "succeeded", outcome.error
    assert job.command == JobCommand.REVISE and job.result["pr_number"] == pr.number
    area = flow.show("diffusellm/issue-1", "src/shapes/area.py")
    assert "def sum_of_areas(" in area and "def area_of_square(" in area
