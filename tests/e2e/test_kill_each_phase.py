"""A remote worker SIGKILLed in each phase of a GitHub job: done once, nothing duplicated."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from diffusellm.forge.base import job_marker
from diffusellm.jobs.model import JobState
from diffusellm.worker.forge_report import STEPS
from tests.e2e.support_deploy import Deployment, Gate, app_env, deployment

pytestmark = pytest.mark.slow

KEY = "issue-1"
BRANCH = f"diffusellm/{KEY}"
REPO_PATH = "/repos/Codertocat/Hello-World"

PHASES = tuple(name for name, _ in STEPS)
"""Every `phase` event the executor reports, in order: request, spec, checkout, profiling style,
digesting repository, applying operations, validating in sandbox, push, pull request. A gate holds
the worker's event request right after the event is stored, and the worker is killed there.

Steps without an event of their own are reached through the GitHub writes below instead: the
formatting, changelog and local commit happen inside "applying operations" / "validating in
sandbox" and leave nothing on GitHub; the check run and the final status edit happen inside
"pull request"."""


def _status_posted(method: str, path: str, _body: bytes) -> bool:
    return method == "POST" and path == f"{REPO_PATH}/issues/1/comments"


def _branch_pushed(method: str, path: str, _body: bytes) -> bool:
    return method == "POST" and path == "/Codertocat/Hello-World.git/git-receive-pack"


def _pr_opened(method: str, path: str, _body: bytes) -> bool:
    return method == "POST" and path == f"{REPO_PATH}/pulls"


def _check_run_created(method: str, path: str, _body: bytes) -> bool:
    return method == "POST" and path == f"{REPO_PATH}/check-runs"


def _status_says_done(method: str, path: str, body: bytes) -> bool:
    if method != "PATCH" or not path.startswith(f"{REPO_PATH}/issues/comments/"):
        return False
    return "✅ Done" in str(json.loads(body).get("body", ""))


def _landed(world: Deployment, where: str) -> bool:
    """Whether the held GitHub write is visible on the double (it landed before the kill)."""
    double, repo = world.double, world.repo
    return {
        "status comment posted": lambda: len(world.bot_comments()) == 1,
        "branch pushed": lambda: BRANCH in double.branches(repo),
        "pull request opened": lambda: len(double.pulls(repo)) == 1,
        "check run created": lambda: len(repo.check_runs) == 1,
        "status comment says done": lambda: "✅ Done" in world.bot_comments()[0],
    }[where]()


WRITES: dict[str, Callable[[str, str, bytes], bool]] = {
    "status comment posted": _status_posted,
    "branch pushed": _branch_pushed,
    "pull request opened": _pr_opened,
    "check run created": _check_run_created,
    "status comment says done": _status_says_done,
}
"""GitHub writes the double performs, then holds the answer to: the worker dies not knowing
that its write landed, so the retry must find the comment, branch and PR by name and marker."""


def _arm(world: Deployment, where: str) -> Gate:
    gate = Gate(where)
    if where in WRITES:
        world.double.request_gates.append((WRITES[where], gate))
    else:
        world.store.phase_gates[where] = gate
    return gate


@pytest.mark.parametrize("where", [*PHASES, *WRITES])
def test_a_worker_killed_there_leaves_one_job_one_pr_one_branch_one_comment(
    where: str, tmp_path: Path,
) -> None:
    with deployment(tmp_path) as world:
        gate = _arm(world, where)
        # pyright is off to keep each case short; ruff and the scoped pytest still run.
        config = world.write_worker_config(validation={"pyright": False})
        env = {**app_env(world.double, tmp_path), "DIFFUSELLM_CONFIG": str(config)}
        job = world.label_issue()
        doomed = world.start_worker("doomed", env)
        world.wait_for(gate, doomed, "doomed")
        held = world.job(job.id)
        assert (held.state, held.worker_id) == (JobState.RUNNING, "doomed")
        if where in WRITES:
            assert _landed(world, where)
        else:
            assert [e.message for e in world.store.events(job.id) if e.kind == "phase"][-1] == where
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait(30)
        gate.release()

        survivor = world.start_worker("survivor", env, "--max-jobs", "1")
        assert survivor.wait(300) == 0, world.worker_log("survivor")[-4000:]
        _assert_done_once(world, job.id)


def _assert_done_once(world: Deployment, job_id: str) -> None:
    job = world.job(job_id)
    assert job.state is JobState.SUCCEEDED, (job.error, world.worker_log("survivor")[-4000:])
    assert (job.attempts, job.worker_id) == (2, "survivor")
    kinds = [e.kind for e in world.store.events(job_id)]
    assert (kinds.count("reaped"), kinds.count("finished")) == (1, 1), kinds

    double, repo = world.double, world.repo
    assert double.branches(repo) == [BRANCH, "main"]
    (pr,) = double.pulls(repo)
    assert pr.pull is not None and pr.pull.draft and pr.pull.head == BRANCH
    assert job_marker(KEY) in pr.body and f"Closes #{world.issue.number}" in pr.body
    head = double.branch_sha(repo, BRANCH)
    assert (job.result["pr_number"], job.result["commit"]) == (pr.number, head)
    assert "def area_of_square(" in world.git("show", f"{BRANCH}:src/shapes/area.py")

    (status,) = world.bot_comments()
    assert job_marker(KEY) in status and "✅ Done" in status
    assert job.result["status_comment_id"] == next(
        c.id for c in double.comments_on(repo, world.issue.number))
    runs = [(r.name, r.conclusion) for r in repo.check_runs.values() if r.head_sha == head]
    assert runs == [("diffusellm", "success")]
    assert [r["content"] for r in repo.reactions] == ["eyes"]
    assert double.violations == [], "requests or responses off GitHub's OpenAPI description"
