"""Admin pages, data: what the job list and job detail show, built from stored jobs and events."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from diffusellm.app.admin.graph import checkout_dir
from diffusellm.jobs.model import EDITED_SPEC_KEY, TERMINAL_STATES, Job, JobEvent, JobState
from diffusellm.state import repo_state

MAX_PATCH_BYTES = 512 * 1024
_YAML_BLOCK = re.compile(r"```ya?ml[ \t]*\n(.*?)\n```", re.DOTALL)
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


def job_row(job: Job) -> JobRow:
    """The job list's view of `job`."""
    return JobRow(id=job.id, state=job.state.value, repo=job.request.repo_full_name,
                  issue=issue_label(job), title=job.request.title, command=job.command.value,
                  attempts=f"{job.attempts}/{job.max_attempts}", updated=when(job.updated_at))


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
    spec_edited: bool
    plan_yaml: str
    checks: list[CheckRow]
    patch: str
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
    warnings: list[str] = field(default_factory=list[str])


def _dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}  # pyright: ignore[reportUnknownArgumentType]


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else []  # pyright: ignore[reportUnknownArgumentType]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def spec_text(job: Job) -> tuple[str, bool]:
    """The spec YAML to show and edit, and whether a person edited it.

    In order: the edited spec, the spec the run reported, the ```yaml block of the issue.
    """
    edited = job.result.get(EDITED_SPEC_KEY)
    if isinstance(edited, str) and edited.strip():
        return edited, True
    reported = _dict(job.result.get("report")).get("spec")
    if isinstance(reported, dict) and reported:
        return yaml.safe_dump(reported, sort_keys=False, allow_unicode=True), False
    text = job.request.instructions or job.request.body
    match = _YAML_BLOCK.search(text.replace("\r\n", "\n"))
    return (match.group(1) + "\n" if match else ""), False


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


def job_detail(job: Job, events: list[JobEvent], *, state_dir: Path) -> JobDetail:
    """The job page's view of `job` and its timeline."""
    result = job.result
    report = _dict(result.get("report"))
    spec, edited = spec_text(job)
    pr_number = result.get("pr_number")
    return JobDetail(
        row=job_row(job), job=job,
        events=[(when(e.at), e.kind, e.message) for e in events],
        spec_yaml=spec, spec_edited=edited, plan_yaml=_plan_yaml(report),
        checks=check_rows(report), patch=read_patch(job, state_dir),
        pr_url=_web_url(result.get("pr_url")),
        pr_label=f"#{pr_number}" if isinstance(pr_number, int) else "",
        branches=_local_branches(result), status=_text(result.get("status")),
        error=job.error or _text(result.get("error")), hint=_text(result.get("hint")),
        question=_text(report.get("question")),
        verdict=_verdict(result),
        result_json=json.dumps(result, indent=2, sort_keys=True, default=str) if result else "",
        can_approve=job.state is JobState.WAITING_APPROVAL,
        can_cancel=job.state not in TERMINAL_STATES,
        warnings=[str(w) for w in _list(report.get("warnings"))])
