"""Job executor: check the frozen request, run the local pipeline, push, open the PR, report."""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from diffusellm.config import Settings, load_settings
from diffusellm.errors import ConfigError, DiffuseLLMError, SpecError
from diffusellm.forge.base import Forge, ForgeError, PullRequest, job_marker, work_key
from diffusellm.forge.freeze import still_matches, trusted_comments
from diffusellm.forge.github import GitHubApp
from diffusellm.forge.github_settings import GitHubSettings, secrets_from_env
from diffusellm.forge.local import LocalForge
from diffusellm.jobs.model import EDITED_SPEC_KEY, SPEC_AUTHOR_KEY, SPEC_BY_MODEL, Job, JobCommand
from diffusellm.learn.outcomes import OutcomeStore
from diffusellm.pipeline.deliver.summary import unchecked_title
from diffusellm.pipeline.job import Models, RunReport, planned_spec
from diffusellm.pipeline.normalise.issue import issue_text
from diffusellm.pipeline.runner import run_issue, run_spec
from diffusellm.pipeline.spec import YAML_FENCE, Spec, load_spec_text, spec_yaml
from diffusellm.pipeline.validate.sandbox import Sandbox
from diffusellm.pipeline.workspace import run_git
from diffusellm.repo_config import (
    REPO_CONFIG_PATH,
    SETUP_HINT,
    RepoConfig,
    config_with_guidance,
    effective_settings,
    parse_repo_config,
    path_violations,
)
from diffusellm.worker.forge_report import (
    StatusBoard,
    changed_text_reply,
    check_output,
    failure_text,
    plan_section,
    pr_body,
    question_text,
    spec_request_text,
)
from diffusellm.worker.loop import NEXT_STATE_KEY, Execute, ProgressSink, RetryableError
from diffusellm.worker.sandbox import sandbox_from_settings

log = structlog.get_logger(__name__)
ForgeFactory = Callable[[str, "int | None"], Forge]
CHECK_NAME = "diffusellm"
PLAN_POSTED = "plan_posted"
"""Set in a PLAN job's result; the job comes back after `approve` and then makes the change."""


class JobFailedError(DiffuseLLMError):
    """The job ended without its change; the user was already told why in the status comment.

    `result` keeps what the executor knew (status comment id, reason) for logs and tests.
    """

    def __init__(self, message: str, *, result: dict[str, Any]) -> None:
        super().__init__(message)
        self.result = result


class StopJobError(Exception):
    """Ends a job early with a user-facing outcome already decided (not an error of ours)."""

    def __init__(self, status: str, outcome: str, **data: Any) -> None:
        super().__init__(status)
        self.status = status
        self.outcome = outcome
        self.data = data


@dataclass
class _Run:
    job: Job
    forge: Forge
    settings: Settings
    sandbox: Sandbox
    options: GitHubSettings
    progress: ProgressSink
    board: StatusBoard
    key: str
    number: int
    models: Models | None = None
    """Models for free-text issues; None: only ```yaml specs are run."""

    def step(self, name: str) -> None:
        """Start a step: stop if the job is no longer ours, else report and tick the checklist."""
        if self.progress.lease_lost:
            raise JobFailedError(
                "the job was cancelled or taken over by another worker", result={"status": "cancelled"}
            )
        self.progress.event("phase", name)
        self.board.step(name)


def execute_job(
    job: Job,
    progress: ProgressSink,
    *,
    forge: Forge,
    settings: Settings,
    sandbox: Sandbox,
    options: GitHubSettings | None = None,
    models: Models | None = None,
) -> dict[str, Any]:
    """Run one claimed job end to end; the result for the store, with `status` succeeded or
    planned (then also `next_state: waiting_approval`).

    Failures the user must act on are reported in the status comment and raised as
    JobFailedError; network trouble and rate limits as RetryableError (the loop re-queues).
    """
    req = job.request
    number = req.pr_number if job.command == JobCommand.REVISE else req.issue_number
    number = number if number is not None else (req.pr_number or 0)
    key = work_key(req.issue_number, req.pr_number)
    opts = options or GitHubSettings()
    board = StatusBoard(forge=forge, number=number, key=key, title=req.title or key)
    run = _Run(job, forge, settings, sandbox, opts, progress, board, key, number, models)
    log.info("execute.start", job=job.id, repo=req.repo_full_name, key=key)
    try:
        board.attach()
        forge.add_reaction(number, "eyes")
        return _execute(run)
    except StopJobError as stop:
        board.finish(stop.outcome, completed=False)
        result = {"status": stop.status, "status_comment_id": _comment_id(board), **stop.data}
        raise JobFailedError(
            f"{stop.status}: {stop.data.get('reason') or stop.data.get('error')}", result=result
        ) from None
    except ForgeError as exc:
        if exc.retryable:
            _quietly(board, f"⏸️ Interrupted ({exc.message}); the job will be retried.")
            raise RetryableError(exc.message, hint=exc.hint) from exc
        raise _failed(run, exc) from None
    except JobFailedError:
        raise
    except DiffuseLLMError as exc:
        raise _failed(run, exc) from None


def make_executor(
    *,
    forges: ForgeFactory,
    settings: Settings,
    sandbox: Sandbox,
    options: GitHubSettings | None = None,
    models: Models | None = None,
) -> Execute:
    """The job loop's `Execute`: a forge per job, GitHub's for `owner/name` (through `forges`),
    LocalForge for `local:/path` (whose comments and PR are recorded under `result["local"]`)."""

    def execute(job: Job, progress: ProgressSink) -> dict[str, Any]:
        name = job.request.repo_full_name
        if not name.startswith("local:"):
            forge = forges(name, job.request.installation_id)
            return execute_job(
                job, progress, forge=forge, settings=settings, sandbox=sandbox, options=options, models=models
            )
        local = LocalForge(Path(name.removeprefix("local:")), request=job.request)
        result = execute_job(
            job, progress, forge=local, settings=settings, sandbox=sandbox, options=options, models=models
        )
        return {**result, "local": local.result()}

    return execute


def _quietly(board: StatusBoard, outcome: str) -> None:
    """Best effort: the forge may be the thing that is failing."""
    try:
        board.finish(outcome, completed=False)
    except ForgeError:
        log.warning("execute.status_not_updated")


def _comment_id(board: StatusBoard) -> int | None:
    return board.comment.id if board.comment else None


def _failed(run: _Run, exc: DiffuseLLMError) -> JobFailedError:
    attempted = {
        JobCommand.RUN: "make the change this issue asks for",
        JobCommand.PLAN: "plan the change this issue asks for",
        JobCommand.REVISE: "revise this pull request",
    }[run.job.command]
    run.board.finish(
        failure_text(attempted=attempted, reason=exc.message, hint=exc.hint, command=run.options.command),
        completed=False,
    )
    log.info("execute.failed", job=run.job.id, error=exc.message)
    return JobFailedError(
        exc.message,
        result={
            "status": "failed",
            "error": exc.message,
            "hint": exc.hint,
            "status_comment_id": _comment_id(run.board),
        },
    )


def _execute(run: _Run) -> dict[str, Any]:
    run.step("request")
    config = _repo_config(run)
    if run.job.command != JobCommand.REVISE:
        _check_text(run)
    run.step("spec")
    spec = _spec(run)
    if spec is None:
        return _from_free_text(run, config)
    run.board.note("spec", f"{len(spec.operations)} operation(s)")
    if run.job.command == JobCommand.PLAN and not run.job.result.get(PLAN_POSTED):
        return _post_plan(run, spec)
    report, checkout, remote = _make_change(run, config, spec)
    result = _publish(run, config, spec, report, checkout, remote)
    _remember(run, report, remote)
    return {"status": "succeeded", "status_comment_id": _comment_id(run.board), **result}


def _post_plan(run: _Run, spec: Spec, *, keep: bool = False) -> dict[str, Any]:
    """Show the plan and wait for `approve`; a plan read from free text is kept as the job's spec, so
    the approved run makes exactly what was shown."""
    run.board.finish(
        f"{plan_section(spec)}\n\nComment `{run.options.command} approve` to make this change.", completed=True
    )
    result: dict[str, Any] = {
        "status": "planned",
        PLAN_POSTED: True,
        NEXT_STATE_KEY: "waiting_approval",
        "status_comment_id": _comment_id(run.board),
    }
    return result | ({EDITED_SPEC_KEY: spec_yaml(spec), SPEC_AUTHOR_KEY: SPEC_BY_MODEL} if keep else {})


def _from_free_text(run: _Run, config: RepoConfig) -> dict[str, Any]:
    """A request without a ```yaml block (an issue, or a revision's instructions on the PR's head): the
    model reads it (normalise, plan, generate) on the checkout."""
    assert run.models is not None
    req = run.job.request
    text = _request_text(run)
    run.board.note("spec", "free text, read by the model")
    checkout, pr = _checkout(run)
    config = _with_guidance(run, config, checkout)
    settings = effective_settings(run.settings, config)
    planning = run.job.command == JobCommand.PLAN
    report = run_issue(
        settings, text, checkout, sandbox=run.sandbox, phase=run.step, models=run.models,
        source=f"#{run.number}", plan_only=planning, issue=req.issue_number,
    )
    if report.status == "needs_clarification" and report.question:
        reply = question_text(report.question, run.options.command)
        raise StopJobError("needs_input", reply, reason="needs_clarification", report=report.model_dump(mode="json"))
    if planning and report.status == "needs_approval" and report.spec is not None:
        return _post_plan(run, planned_spec(report), keep=True)
    remote = _accepted(run, config, report, pr)
    assert report.spec is not None
    result = _publish(run, config, report.spec, report, checkout, remote)
    _remember(run, report, remote)
    return {"status": "succeeded", "status_comment_id": _comment_id(run.board), **result}


def _remember(run: _Run, report: RunReport, remote: str) -> None:
    """Keep the run in this worker's outcome memory (the learning loop); never fails the job."""
    if not run.settings.learn.record_outcomes:
        return
    try:
        OutcomeStore.in_state(run.settings.state_path()).record(report, forge_job=run.job.id, branch=remote)
    except (OSError, sqlite3.Error) as exc:
        log.warning("learn.record_failed", job=run.job.id, error=str(exc))


def _repo_config(run: _Run) -> RepoConfig:
    try:
        return parse_repo_config(run.forge.get_default_branch_file(REPO_CONFIG_PATH))
    except ConfigError as exc:
        raise StopJobError(
            "failed",
            failure_text(
                attempted=f"read this repository's `{REPO_CONFIG_PATH}`",
                reason=exc.message,
                hint=exc.hint,
                command=run.options.command,
            ),
            error=exc.message,
        ) from None


def _check_text(run: _Run) -> None:
    """Re-read the issue and its trusted comments; compare with the frozen hash."""
    req, forge = run.job.request, run.forge
    issue = forge.get_issue(run.number)
    cache: dict[str, bool] = {}

    def trusted(login: str) -> bool:
        if login not in cache:
            cache[login] = forge.get_permission(login).can_write
        return cache[login]

    comments = trusted_comments(
        forge.list_comments(run.number), is_trusted=trusted, bot_login=forge.bot_login, command=run.options.command
    )
    if not still_matches(req, issue.title, issue.body, comments):
        raise StopJobError("needs_input", changed_text_reply(run.options.command), reason="text_changed")
    run.board.note("request", "text unchanged since it was triggered")


def _request_text(run: _Run) -> str:
    """What the job asks in words: a revision's instructions, or the issue's title and body."""
    req = run.job.request
    return req.instructions if run.job.command == JobCommand.REVISE else issue_text(req.title, req.body)


def _spec(run: _Run) -> Spec | None:
    """The ```yaml spec of the request; None for free text a model can read (a RUN with models)."""
    req = run.job.request
    text = _request_text(run)
    edited = run.job.result.get(EDITED_SPEC_KEY)
    source = f"#{run.number}"
    if isinstance(edited, str) and edited.strip():  # approved after an edit on the admin page
        text, source = f"```yaml\n{edited}\n```", "the approved spec"
    if not YAML_FENCE.search(text.replace("\r\n", "\n")):
        if run.models is not None and text.strip():
            return None
        reply = spec_request_text(req.title, run.options.command, free_text=run.models is not None)
        raise StopJobError("needs_input", reply, reason="no_spec")
    try:
        return load_spec_text(text, source=source)
    except SpecError as exc:
        raise StopJobError(
            "failed",
            failure_text(
                attempted="read the ```yaml spec in this issue",
                reason=exc.message,
                hint=exc.hint,
                command=run.options.command,
            ),
            error=exc.message,
        ) from None


def _checkout_dir(settings: Settings, repo: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", repo.replace("/", "__"))
    return settings.state_path() / "forges" / safe / "checkout"


def _checkout(run: _Run) -> tuple[Path, PullRequest | None]:
    """The worker's checkout of the repository, fetched and at the base (the PR's head for a revision)."""
    run.step("checkout")
    pr = None
    if run.job.command == JobCommand.REVISE and run.job.request.pr_number is not None:
        pr = run.forge.get_pull_request(run.job.request.pr_number)
    checkout = _checkout_dir(run.settings, run.forge.repo_full_name)
    sha = run.forge.sync_checkout(checkout, pr.head_branch if pr else None)
    run.board.note("checkout", f"`{sha[:12]}`")
    return checkout, pr


def _with_guidance(run: _Run, config: RepoConfig, checkout: Path) -> RepoConfig:
    """The repository config completed from its instruction files; what was taken goes on the board."""
    merged, taken = config_with_guidance(config, checkout)
    if taken:
        note = f"{run.board.notes.get('checkout', '')}; from the repository's instructions: {'; '.join(taken)}"
        run.board.note("checkout", note)
    return merged


def _make_change(run: _Run, config: RepoConfig, spec: Spec) -> tuple[RunReport, Path, str]:
    checkout, pr = _checkout(run)
    config = _with_guidance(run, config, checkout)
    settings = effective_settings(run.settings, config)
    report = run_spec(settings, spec, checkout, sandbox=run.sandbox, phase=run.step, models=run.models,
                      issue=run.job.request.issue_number)
    return report, checkout, _accepted(run, config, report, pr)


def _why_not(report: RunReport) -> str:
    if report.status == "not_validated":
        return f"the change was {report.stopped_because}\n\n" + check_output(report.validation).summary
    if report.validation.checks:
        return "validation found new failures against the base commit:\n\n" + check_output(report.validation).summary
    return f"no version of the generated code could be validated: {report.stopped_because or report.status}"


def _accepted(run: _Run, config: RepoConfig, report: RunReport, pr: PullRequest | None) -> str:
    """The remote branch for a change that validated and stays inside the allowed paths; else stop."""
    if report.status != "succeeded" or report.branch is None or report.commit is None:
        raise StopJobError(
            "failed",
            failure_text(
                attempted="make the change and validate it",
                reason=_why_not(report),
                hint=SETUP_HINT if report.status == "not_validated" else
                "fix the spec or the code it targets, or write the change as a ```yaml spec (docs/SPEC.md)",
                command=run.options.command,
            ),
            error=report.status,
            report=report.model_dump(mode="json"),
        )
    blocked = path_violations(config, report.changed_files)
    if blocked:
        raise StopJobError(
            "failed",
            failure_text(
                attempted="make the change",
                reason="it touches paths this repository does not allow: " + ", ".join(blocked),
                hint=f"adjust allowed_paths / blocked_paths in {REPO_CONFIG_PATH} or the spec",
                command=run.options.command,
            ),
            error="blocked_paths",
        )
    return pr.head_branch if pr else f"{run.settings.commit.branch_prefix}{run.key}"


def _publish(
    run: _Run, config: RepoConfig, spec: Spec, report: RunReport, checkout: Path, remote: str
) -> dict[str, Any]:
    assert report.branch is not None and report.commit is not None
    run.step("push")
    run.forge.push_branch(checkout, report.branch, remote)
    run_git(["branch", "-D", report.branch], checkout, check=False)  # names stay stable next time
    run.board.note("push", f"`{remote}` at `{report.commit[:12]}`")
    run.step("pull request")
    subject = run_git(["log", "-1", "--format=%s", report.commit], checkout).stdout.decode("utf-8", "replace")
    pr = _upsert_pr(run, config, spec, report, remote, subject.strip() or spec.title)
    check_id = run.forge.upsert_check_run(
        name=CHECK_NAME,
        head_sha=report.commit,
        conclusion="success",
        output=check_output(report.validation),
        external_id=run.key,
    )
    run.board.note("pull request", f"#{pr.number}")
    run.board.finish(f"✅ Done: {pr.html_url or f'#{pr.number}'} is ready for review.", completed=True)
    return {
        "pr_number": pr.number,
        "pr_url": pr.html_url,
        "branch": remote,
        "commit": report.commit,
        "check_run_id": check_id,
        "report": report.model_dump(mode="json"),
    }


def _upsert_pr(run: _Run, config: RepoConfig, spec: Spec, report: RunReport, remote: str,
               subject: str) -> PullRequest:
    """Open (or update) the pull request; its title is the commit's subject: what was changed, in the
    repository's commit style, not what the issue asked for."""
    req = run.job.request
    if run.job.command == JobCommand.REVISE and req.pr_number is not None:
        return run.forge.get_pull_request(req.pr_number)
    summary = Path(report.summary_path).read_text(encoding="utf-8")
    if report.branch:  # the summary names the worker's local branch; readers need the pushed one
        summary = summary.replace(f"`{report.branch}`", f"`{remote}`")
    body = pr_body(summary, spec, issue_number=req.issue_number, key=run.key)
    title = unchecked_title(subject, report.validation)
    found = run.forge.find_pull_request(job_marker(run.key), head_branch=remote)
    if found is not None and found.state == "open":
        return run.forge.update_pull_request(found.number, title=title, body=body)
    draft = config.draft if config.draft is not None else run.options.draft_prs
    base = run.forge.repository().default_branch
    return run.forge.create_pull_request(title=title, body=body, head=remote, base=base, draft=draft)


def build_executor() -> Execute:
    """Zero-argument factory for `python -m diffusellm.worker.remote --execute
    diffusellm.worker.execute:build_executor`: settings from the config file and environment,
    App credentials from APP_ID / PRIVATE_KEY(_PATH) / GHE_HOST; without them only local jobs."""
    environ = dict(os.environ)
    settings = load_settings()
    found: Any = getattr(settings, "github", None)
    options = found if isinstance(found, GitHubSettings) else GitHubSettings()
    secrets = secrets_from_env(environ)
    forges: ForgeFactory = _no_github
    if secrets.app_id:
        forges = GitHubApp.from_secrets(options, secrets).forge
    from diffusellm.worker.models import configured_models

    return make_executor(
        forges=forges,
        settings=settings,
        sandbox=sandbox_from_settings(settings, environ),
        options=options,
        models=configured_models(settings),
    )


def _no_github(repo: str, installation_id: int | None) -> Forge:
    raise ConfigError(
        f"job for {repo} needs GitHub, but APP_ID is not set on this worker",
        hint="set APP_ID and PRIVATE_KEY or PRIVATE_KEY_PATH (docs/DEPLOY.md)",
    )
