"""Admin pages, data: what the job list and job detail show, built from stored jobs and events."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from diffusellm.app.admin.diff import DiffFile, split_patch
from diffusellm.app.admin.explain import failure_hint, spec_origin
from diffusellm.app.admin.graph import checkout_dir
from diffusellm.app.admin.timeline import PhaseSpan, current_phase, elapsed, phases, wait_reason
from diffusellm.jobs.model import TERMINAL_STATES, Job, JobEvent, JobState
from diffusellm.state import repo_state

MAX_PATCH_BYTES = 512 * 1024
_RUN_ID = re.compile(r"[0-9]{8}-[0-9]{6}-[0-9a-f]{8}")
"""A pipeline run's id (`pipeline.runner`): a time stamp and a hash, nothing path-like."""


def when(moment: dt.datetime | None) -> str:
    """A stored time as `2025-03-01 12:00:05 UTC` (naive times are UTC in the store)."""
    if moment is None:
        return ""
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def issue_label(job: Job) -> str:
    """`#7`, `PR #3` or an empty string."""
    req = job.request
    if req.issue_number is not None:
        return f"#{req.issue_number}"
    return f"PR #{req.pr_number}" if req.pr_number is not None else ""


def web_root(api_url: str) -> str:
    """GitHub's web address for its REST root: api.github.com → github.com, HOST/api/v3 → HOST."""
    root = api_url.rstrip("/")
    if root == "https://api.github.com":
        return "https://github.com"
    return root.removesuffix("/api/v3")


@dataclass(frozen=True)
class Board:
    """What a job's row needs to know beyond the job: the other jobs, the time, the web root."""

    now: dt.datetime
    running: list[Job] = field(default_factory=list[Job])
    queued: list[Job] = field(default_factory=list[Job])
    web: str = "https://github.com"


@dataclass(frozen=True)
class JobRow:
    """One line of the job list."""

    id: str
    state: str
    repo: str
    issue: str
    title: str
    command: str
    attempts: str
    updated: str
    created: str = ""
    phase: str = ""
    elapsed: str = ""
    worker: str = ""
    waits: str = ""
    issue_url: str = ""
    pr_url: str = ""
    pr_label: str = ""


def _links(job: Job, web: str) -> tuple[str, str, str]:
    """(issue URL, PR URL, PR label); GitHub links only for GitHub repositories."""
    req, result = job.request, job.result
    number = result.get("pr_number")
    label = f"#{number}" if isinstance(number, int) else ""
    if req.repo_full_name.startswith("local:"):
        return "", "", label
    repo = f"{web}/{req.repo_full_name}"
    issue = f"{repo}/issues/{req.issue_number}" if req.issue_number is not None else ""
    if not issue and req.pr_number is not None:
        issue = f"{repo}/pull/{req.pr_number}"
    pr = _web_url(result.get("pr_url")) or (f"{repo}/pull/{number}" if label else "")
    return _web_url(issue), pr, label


def job_row(job: Job, board: Board | None = None, events: Sequence[JobEvent] = ()) -> JobRow:
    """The job list's view of `job`; `events` are read for running jobs (their phase and start)."""
    board = board or Board(now=dt.datetime.now(dt.UTC))
    issue_url, pr_url, pr_label = _links(job, board.web)
    return JobRow(id=job.id, state=job.state.value, repo=job.request.repo_full_name,
                  issue=issue_label(job), title=job.request.title, command=job.command.value,
                  attempts=f"{job.attempts}/{job.max_attempts}", updated=when(job.updated_at),
                  created=when(job.created_at), phase=current_phase(job, events),
                  elapsed=elapsed(job, events, board.now), worker=job.worker_id or "",
                  waits=wait_reason(job, board.running, board.queued, board.now),
                  issue_url=issue_url, pr_url=pr_url, pr_label=pr_label)


@dataclass(frozen=True)
class CheckRow:
    """One line of the validation table."""

    name: str
    passed: bool
    scope: str
    failures: str
    new_failures: list[str]
    skipped: str


@dataclass(frozen=True)
class JobDetail:
    """Everything the job page shows; texts are raw (the template escapes them)."""

    row: JobRow
    job: Job
    events: list[tuple[str, str, str]]
    spec_yaml: str
    spec_origin: str
    """Where the spec came from: "read by the model from the issue's text", "edited by NAME", ..."""
    plan_yaml: str
    checks: list[CheckRow]
    patch: str
    files: list[DiffFile]
    phases: list[PhaseSpan]
    pr_url: str
    pr_label: str
    branches: list[str]
    status: str
    error: str
    hint: str
    question: str
    verdict: str
    """What became of the pull request: "accepted (pull request #5 merged)", or "" while open."""
    result_json: str
    can_approve: bool
    can_cancel: bool
    can_retry: bool
    live: bool
    """Whether the page polls for updates (the job has not ended)."""
    warnings: list[str] = field(default_factory=list[str])


def _dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}  # pyright: ignore[reportUnknownArgumentType]


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else []  # pyright: ignore[reportUnknownArgumentType]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def check_rows(report: dict[str, Any]) -> list[CheckRow]:
    """The validation table of a RunReport (as stored JSON)."""
    rows: list[CheckRow] = []
    for raw in _list(_dict(report.get("validation")).get("checks")):
        check = _dict(raw)
        rows.append(CheckRow(
            name=_text(check.get("name")), passed=bool(check.get("passed")),
            scope=_text(check.get("scope")),
            failures=f"{check.get('base_failures', 0)} → {check.get('head_failures', 0)}",
            new_failures=[str(f) for f in _list(check.get("new_failures"))],
            skipped=_text(check.get("skipped_reason"))))
    return rows


def patch_file(job: Job, state_dir: Path) -> Path | None:
    """Where this job's own patch lies: its repository's job folder (as the worker lays it out)
    under the run id the report names, which must look like one (never a path a worker chose)."""
    run_id = _text(_dict(job.result.get("report")).get("job_id"))
    if not _RUN_ID.fullmatch(run_id):
        return None
    checkout = checkout_dir(state_dir, job.request.repo_full_name)
    return repo_state(state_dir, checkout).jobs / run_id / "change.patch"


def read_patch(job: Job, state_dir: Path) -> str:
    """The job's own patch (a regular file, links not followed), cut at MAX_PATCH_BYTES."""
    path = patch_file(job, state_dir)
    if path is None:
        return ""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return ""
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return ""
        data = handle.read(MAX_PATCH_BYTES + 1)
    text = data[:MAX_PATCH_BYTES].decode("utf-8", "replace")
    return text + ("\n… (patch cut at 512 KiB)" if len(data) > MAX_PATCH_BYTES else "")


def _web_url(value: Any) -> str:
    """Only http(s) links reach an href (a `javascript:` URL would run on click)."""
    text = _text(value)
    return text if text.startswith(("https://", "http://")) else ""


def _local_branches(result: dict[str, Any]) -> list[str]:
    prs = _list(_dict(result.get("local")).get("pull_requests"))
    return [_text(_dict(pr).get("head_branch")) for pr in prs if _dict(pr).get("head_branch")]


def _plan_yaml(report: dict[str, Any]) -> str:
    plan = report.get("plan")
    return yaml.safe_dump(plan, sort_keys=False, allow_unicode=True) if plan else ""


def _verdict(result: dict[str, Any]) -> str:
    verdict, source = _text(result.get("verdict")), _text(result.get("verdict_source"))
    return f"{verdict} ({source})" if verdict and source else verdict


def job_detail(job: Job, events: list[JobEvent], *, state_dir: Path, board: Board) -> JobDetail:
    """The job page's view of `job` and its timeline."""
    result = job.result
    report = _dict(result.get("report"))
    spec, origin = spec_origin(job)
    patch = read_patch(job, state_dir)
    row = job_row(job, board, events)
    ended = job.state in TERMINAL_STATES
    return JobDetail(
        row=row, job=job,
        events=[(when(e.at), e.kind, e.message) for e in events],
        spec_yaml=spec, spec_origin=origin, plan_yaml=_plan_yaml(report),
        checks=check_rows(report), patch=patch, files=split_patch(patch),
        phases=phases(events, board.now),
        pr_url=row.pr_url, pr_label=row.pr_label,
        branches=_local_branches(result), status=_text(result.get("status")),
        error=job.error or _text(result.get("error")),
        hint=failure_hint(job, _text(result.get("hint"))),
        question=_text(report.get("question")),
        verdict=_verdict(result),
        result_json=json.dumps(result, indent=2, sort_keys=True, default=str) if result else "",
        can_approve=job.state is JobState.WAITING_APPROVAL,
        can_cancel=not ended, can_retry=job.state in (JobState.FAILED, JobState.DEAD), live=not ended,
        warnings=[str(w) for w in _list(report.get("warnings"))])
