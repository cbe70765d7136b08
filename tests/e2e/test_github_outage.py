"""GitHub goes away mid-way: triage and jobs are retried with back-off, then dead with a reason."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from diffusellm.app.inbox import SpoolInbox
from diffusellm.app.metrics import Metrics
from diffusellm.app.recovery import InboxTriage
from diffusellm.app.router import EventRouter
from diffusellm.app.triage import TriageContext, register
from diffusellm.app.webhooks import PATH, webhook_router
from diffusellm.config import Settings
from diffusellm.forge.github_auth import TRIAGE_PERMISSIONS
from diffusellm.jobs.model import Job, JobState
from diffusellm.jobs.store import SqlJobStore
from diffusellm.jobs.wire import Outcome
from diffusellm.pipeline.validate.sandbox import Limits, SandboxResult
from diffusellm.worker.execute import make_executor
from diffusellm.worker.loop import StoreSource, run_one
from tests.conftest import make_repo
from tests.e2e.test_github_flow import FILES, ISSUE_BODY, RecordingSandbox
from tests.fakes.github_double import GitHubDouble, app_for, fast_settings, serve
from tests.fakes.github_resources import IssueRec, RepoRec
from tests.fakes.webhook_payloads import comment_created, delivery, labeled

pytestmark = pytest.mark.slow
SECRET = "outage-secret"


class OutageSandbox(RecordingSandbox):
    """The real sandbox; the first validation run takes GitHub down (mid-job, after the clone)."""

    def __init__(self, double: GitHubDouble) -> None:
        super().__init__()
        self.double, self.armed = double, False

    def run(self, argv: Sequence[str], *, workdir: Path, env: Mapping[str, str] | None = None,
            limits: Limits | None = None, ro_paths: Sequence[Path] = (), network: bool = False) -> SandboxResult:
        if self.armed:
            self.armed = False
            self.double.stop()
        return super().run(argv, workdir=workdir, env=env, limits=limits, ro_paths=ro_paths, network=network)


class Bench:
    """Webhook route with background triage and one worker, on a SQLite store, against the double."""

    def __init__(self, double: GitHubDouble, tmp_path: Path, *, max_attempts: int = 3) -> None:
        self.double, self.now = double, [1_000_000.0]
        self.store = SqlJobStore(f"sqlite:///{tmp_path / 'jobs.sqlite'}", backoff_base_seconds=0)
        options = fast_settings(double, max_retries=0)
        self.counters = Metrics()
        ctx = TriageContext(store=self.store, settings=options,
                            forges=app_for(double, options, permissions=TRIAGE_PERMISSIONS).forge)
        self.inbox = SpoolInbox(tmp_path / "inbox")
        self.triage = InboxTriage(self.store, register(EventRouter(), ctx), self.inbox, self.counters,
                                  retry_base_s=30, max_attempts=max_attempts, clock=lambda: self.now[0])
        app = FastAPI()
        app.include_router(webhook_router(store=self.store, secret=SECRET, events=register(EventRouter(), ctx),
                                          inbox=self.inbox, triage=self.triage.process))
        self.client = TestClient(app)
        self.sandbox = OutageSandbox(double)
        self.execute = make_executor(forges=app_for(double, options).forge,
                                     settings=Settings(state_dir=tmp_path / "state"),
                                     sandbox=self.sandbox, options=options)

    def deliver(self, event: str, payload: dict[str, object]) -> None:
        body, headers = delivery(event, dict(payload), SECRET)
        assert self.client.post(PATH, content=body, headers=headers).status_code == 202

    def work(self) -> tuple[Outcome, Job]:
        job = self.store.claim("worker-1", 600)
        assert job is not None, "nothing was claimable"
        source = StoreSource(self.store, lease_seconds=600, heartbeat_seconds=60)
        outcome = run_one(source, self.execute, job, worker_id="worker-1", heartbeat_seconds=60)
        assert outcome is not None
        stored = self.store.get(job.id)
        assert stored is not None
        return outcome, stored

    def triaged(self, outcome: str) -> float:
        return sum(s.value for m in self.counters.triage.collect() for s in m.samples
                   if s.labels.get("outcome") == outcome and s.name.endswith("_total"))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[GitHubDouble, RepoRec, IssueRec]]:
    with serve(tmp_path / "github") as double:
        src = make_repo(tmp_path / "src", FILES)
        repo = double.add_repo("Codertocat", "Hello-World", src)
        double.set_role(repo, "maintainer", "maintain")
        issue = double.add_issue(repo, "Rename square_area", ISSUE_BODY, "reporter")
        yield double, repo, issue


def test_triage_during_an_outage_is_kept_and_retried_after_it(
    world: tuple[GitHubDouble, RepoRec, IssueRec], tmp_path: Path,
) -> None:
    double, repo, issue = world
    bench = Bench(double, tmp_path)
    payload = labeled(double, repo, issue, "diffusellm", "maintainer")
    double.stop()
    bench.deliver("issues", payload)
    (failed,) = bench.inbox.summary(bench.now[0]).failures
    assert failed[2].attempts == 1 and not failed[2].dead
    assert failed[2].error == "GitHub unreachable: connection refused (127.0.0.1)"
    assert bench.store.list_jobs() == [] and bench.triaged("retry") == 1
    assert bench.triage.recover() == 0  # not due yet: back-off

    double.restart()
    bench.now[0] += 31
    assert bench.triage.recover() == 1
    assert [j.state for j in bench.store.list_jobs()] == [JobState.QUEUED]
    assert bench.inbox.pending() == [] and bench.triaged("done") == 1


def test_a_job_cut_off_mid_way_is_queued_again_and_finishes_after_the_outage(
    world: tuple[GitHubDouble, RepoRec, IssueRec], tmp_path: Path,
) -> None:
    double, repo, issue = world
    bench = Bench(double, tmp_path)
    bench.deliver("issues", labeled(double, repo, issue, "diffusellm", "maintainer"))
    bench.sandbox.armed = True
    outcome, job = bench.work()
    assert outcome.retryable and job.state is JobState.QUEUED and job.attempts == 1
    assert job.error is not None and "GitHub unreachable" in job.error and "connection refused" in job.error
    assert "internal error" not in job.error and "Traceback" not in job.error

    double.restart()
    outcome, job = bench.work()
    assert (outcome.state, job.state, job.attempts) == ("succeeded", JobState.SUCCEEDED, 2), outcome.error
    assert len(double.pulls(repo)) == 1 and double.branches(repo) == ["diffusellm/issue-1", "main"]
    assert double.violations == []


def test_a_long_outage_ends_the_job_dead_with_a_readable_reason(
    world: tuple[GitHubDouble, RepoRec, IssueRec], tmp_path: Path,
) -> None:
    double, repo, issue = world
    bench = Bench(double, tmp_path)
    bench.deliver("issues", labeled(double, repo, issue, "diffusellm", "maintainer"))
    double.stop()
    attempts = [bench.work() for _ in range(3)]  # max_attempts: the repository config's default, 3
    assert all(outcome.retryable for outcome, _ in attempts)
    assert [job.state for _, job in attempts] == [JobState.QUEUED, JobState.QUEUED, JobState.DEAD]
    job = attempts[-1][1]
    assert job.error is not None and job.error.startswith("GitHub unreachable while ")
    assert job.error.endswith("; gave up after 3 attempts")


def test_deliveries_that_cannot_concern_the_bot_make_no_api_call(
    world: tuple[GitHubDouble, RepoRec, IssueRec], tmp_path: Path,
) -> None:
    double, repo, issue = world
    bench = Bench(double, tmp_path)
    bench.deliver("issues", labeled(double, repo, issue, "bug", "maintainer"))
    assert [c.operation_id for c in double.log if c.operation_id.startswith("repos/")] == [
        "repos/get", "repos/get-content"]  # the default branch, then .github/diffusellm.yml
    before = len(double.log)
    double.stop()  # and while GitHub is down they are still triaged at once
    bench.deliver("issues", labeled(double, repo, issue, "bug", "maintainer"))
    chatter = double.add_comment(repo, issue.number, "maintainer", "Thanks, looks good")
    bench.deliver("issue_comment", comment_created(double, repo, issue, chatter))
    assert len(double.log) == before and bench.store.list_jobs() == []
    assert bench.inbox.pending() == [] and bench.triaged("done") == 3
