"""The local pipeline: profile, digest, apply operations, validate in the sandbox, commit to a new branch."""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import structlog
from pydantic import BaseModel, ConfigDict

from diffusellm.config import Settings
from diffusellm.errors import RepositoryError
from diffusellm.repo.digest import digest_repository
from diffusellm.repo.graph import KnowledgeGraph
from diffusellm.repo.profile import StyleProfile
from diffusellm.repo.style import profile_style, write_style_artifacts
from diffusellm.state import RepoState, repo_state
from diffusellm.worker.commit import (
    changed_line_ranges,
    changelog_entry,
    commit_message,
    format_changed_code,
    summary_markdown,
)
from diffusellm.worker.ops.apply import apply_operations, write_changes
from diffusellm.worker.report import ValidationReport
from diffusellm.worker.sandbox import Sandbox
from diffusellm.worker.spec import RenameSymbol, Spec
from diffusellm.worker.validate import ValidationSettings, validate_change
from diffusellm.worker.workspace import (
    RepoInfo,
    Worktree,
    branch_name,
    changed_files,
    commit_and_branch,
    create_worktree,
    export_checkout,
    open_repository,
    remove_worktree,
    resolve_base,
)

Phase = Callable[[str], None]
log = structlog.get_logger(__name__)


class RunReport(BaseModel):
    """What a run did: the branch it left, the files it changed and how validation went."""

    model_config = ConfigDict(extra="forbid")

    job_id: str
    repo: str
    base_commit: str
    status: Literal["succeeded", "validation_failed"]
    branch: str | None
    commit: str | None
    changed_files: list[str]
    changelog: str | None
    validation: ValidationReport
    spec: Spec
    summary_path: str
    patch_path: str
    warnings: list[str] = []


def _job_id(spec: Spec) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    digest = hashlib.sha256(spec.model_dump_json().encode()).hexdigest()[:8]
    return f"{stamp}-{digest}"


def _dirty_paths(repo: Path) -> set[str]:
    out = subprocess.run(
        ["git", "-c", "core.quotepath=off", "status", "--porcelain", "-z", "--untracked-files=all"],
        cwd=repo,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode("utf-8", "surrogateescape")
    return {entry[3:] for entry in out.split("\0") if len(entry) > 3}


def _refuse_if_in_the_way(info: RepoInfo, touched: list[str]) -> list[str]:
    """Uncommitted edits to files the change rewrites would conflict with the branch: stop early."""
    if not info.dirty:
        return []
    clash = sorted(_dirty_paths(info.root).intersection(touched))
    if clash:
        raise RepositoryError(
            "uncommitted changes are in the way: " + ", ".join(clash) + " would be rewritten",
            hint="commit or stash those files first; nothing was changed",
        )
    return ["the working tree has uncommitted changes; they are not part of the new branch"]


def _validation_settings(settings: Settings) -> ValidationSettings:
    cfg = settings.validation
    return ValidationSettings(
        ruff=cfg.ruff,
        pyright=cfg.pyright,
        pytest=cfg.pytest,
        python=cfg.python,
        pytest_args=list(cfg.pytest_args),
        test_timeout_s=cfg.test_timeout_s,
    )


def _select_tests(state: RepoState, spec: Spec, touched: list[str]) -> list[str] | None:
    graph = KnowledgeGraph(state.graph_db)
    try:
        return graph.tests_reaching([op.target for op in spec.operations], touched)
    finally:
        graph.close()


def _prepare(wt: Worktree, state: RepoState, phase: Phase) -> tuple[StyleProfile, Path, list[str]]:
    phase("profiling style")
    profile = profile_style(wt.path)
    artifacts = write_style_artifacts(profile, wt.path, state.style_dir)
    phase("digesting repository")
    digest = digest_repository(wt.path, state.graph_db)
    problems = [
        f"{p.path} could not be parsed ({p.message}); it was left as it is"
        for p in digest.parse_errors
    ]
    return profile, artifacts["ruff_config"], problems


def run_spec(
    settings: Settings,
    spec: Spec,
    repo: Path,
    *,
    sandbox: Sandbox,
    base: str | None = None,
    phase: Phase = lambda _: None,
) -> RunReport:
    """Run the whole local pipeline on `repo`; the user's checkout is never touched."""
    info = open_repository(repo)
    base_commit = resolve_base(info, base)
    state = repo_state(settings.state_path(), info.root).ensure()
    job_id = _job_id(spec)
    job_dir = state.jobs / job_id
    job_dir.mkdir(parents=True)
    log.info("job.start", job=job_id, repo=str(info.root), base=base_commit)
    wt = create_worktree(info.root, base_commit, state.worktrees, job_id)
    try:
        return _run_in_worktree(settings, spec, info, wt, state, job_dir, sandbox, phase)
    finally:
        remove_worktree(wt)


def _run_in_worktree(
    settings: Settings,
    spec: Spec,
    info: RepoInfo,
    wt: Worktree,
    state: RepoState,
    job_dir: Path,
    sandbox: Sandbox,
    phase: Phase,
) -> RunReport:
    profile, ruff_config, problems = _prepare(wt, state, phase)
    phase("applying operations")
    changes = apply_operations(wt.path, spec.operations)
    warnings = _refuse_if_in_the_way(info, sorted(changes)) + problems
    write_changes(wt.path, changes)
    python = settings.validation.python or _default_python()
    if settings.commit.format_changed:
        format_changed_code(wt.path, changed_line_ranges(wt), ruff_config, python)
    changelog = (
        changelog_entry(profile.changelog, spec, wt.path, job_id=job_dir.name)
        if settings.commit.changelog
        else None
    )
    touched = changed_files(wt)
    phase("validating in sandbox")
    report = _validate(settings, spec, state, wt, touched, sandbox, ruff_config)
    patch = _save_patch(wt, job_dir)
    branch, commit = _maybe_commit(settings, spec, info, wt, report, profile)
    summary = summary_markdown(
        spec,
        changed_files=touched,
        report=report,
        changelog_path=changelog,
        branch=branch or "(not created)",
        commit=commit,
    )
    (job_dir / "summary.md").write_text(summary, encoding="utf-8")
    result = RunReport(
        job_id=job_dir.name,
        repo=str(info.root),
        base_commit=wt.base_commit,
        status="succeeded" if report.passed else "validation_failed",
        branch=branch,
        commit=commit,
        changed_files=touched,
        changelog=changelog,
        validation=report,
        spec=spec,
        summary_path=str(job_dir / "summary.md"),
        patch_path=str(patch),
        warnings=warnings,
    )
    (job_dir / "report.json").write_text(result.model_dump_json(indent=2), encoding="utf-8")
    return result


def _default_python() -> str:
    return sys.executable


def _validate(
    settings: Settings,
    spec: Spec,
    state: RepoState,
    wt: Worktree,
    touched: list[str],
    sandbox: Sandbox,
    ruff_config: Path,
) -> ValidationReport:
    tests = _select_tests(state, spec, [f for f in touched if f.endswith((".py", ".pyi"))])
    with tempfile.TemporaryDirectory(prefix="diffusellm-base-") as tmp:
        base_dir = export_checkout(wt.repo, wt.base_commit, Path(tmp) / "base")
        return validate_change(
            base_dir=base_dir,
            head_dir=wt.path,
            changed_files=touched,
            tests=tests,
            acceptance_tests=list(spec.acceptance.tests),
            sandbox=sandbox,
            settings=_validation_settings(settings),
            ruff_config=ruff_config,
            renames=_renames(spec),
        )


def _renames(spec: Spec) -> dict[str, str]:
    """New name → old name of every rename in the spec, to match respelled base failures."""
    return {
        op.new_name: op.target.rsplit(".", 1)[-1]
        for op in spec.operations
        if isinstance(op, RenameSymbol)
    }


def _save_patch(wt: Worktree, job_dir: Path) -> Path:
    subprocess.run(["git", "add", "-A"], cwd=wt.path, check=True, capture_output=True, timeout=120)
    diff = subprocess.run(
        ["git", "diff", "--cached", "--binary", wt.base_commit],
        cwd=wt.path,
        check=True,
        capture_output=True,
        timeout=120,
    ).stdout
    path = job_dir / "change.patch"
    path.write_bytes(diff)
    return path


def _maybe_commit(
    settings: Settings,
    spec: Spec,
    info: RepoInfo,
    wt: Worktree,
    report: ValidationReport,
    profile: StyleProfile,
) -> tuple[str | None, str | None]:
    if not report.passed and not settings.commit.keep_failed:
        return None, None
    message = commit_message(profile.commit_convention, spec, profile.commit_examples)
    branch = branch_name(settings.commit.branch_prefix, spec.title, info.root)
    sha = commit_and_branch(
        wt,
        branch=branch,
        message=message,
        author_name=settings.commit.author_name,
        author_email=settings.commit.author_email,
    )
    return branch, sha
