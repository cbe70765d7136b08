"""The local pipeline: profile, digest, apply or generate the change, validate in the sandbox, commit."""

from __future__ import annotations

import datetime as dt
import hashlib
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import structlog
from pydantic import BaseModel, ConfigDict

from diffusellm.config import Settings
from diffusellm.errors import RepositoryError, SpecError
from diffusellm.models.base import Denoiser, TextGenerator
from diffusellm.repo.digest import digest_repository
from diffusellm.repo.graph import KnowledgeGraph
from diffusellm.repo.profile import StyleProfile
from diffusellm.repo.style import profile_style, write_style_artifacts
from diffusellm.repo.trie import SignatureTrie
from diffusellm.state import RepoState, repo_state
from diffusellm.worker.collaborate import Attempt
from diffusellm.worker.collaborate_run import Localiser, plan_written_spec
from diffusellm.worker.commit import (
    changed_line_ranges,
    changelog_entry,
    commit_message,
    format_changed_code,
    summary_markdown,
)
from diffusellm.worker.normalise import spec_from_text
from diffusellm.worker.ops.apply import apply_operations, write_changes
from diffusellm.worker.ops.generative import GenerativeContext
from diffusellm.worker.plan import Plan
from diffusellm.worker.plan_settings import GenerationSettings
from diffusellm.worker.report import ValidationReport
from diffusellm.worker.sandbox import Sandbox
from diffusellm.worker.spec import AddFunction, AddTest, Operation, RenameSymbol, Spec
from diffusellm.worker.validate import validate_change
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
    run_git,
)

Phase = Callable[[str], None]
log = structlog.get_logger(__name__)


class RunReport(BaseModel):
    """What a run did: the branch it left, the files it changed and how validation went."""

    model_config = ConfigDict(extra="forbid")

    job_id: str
    repo: str
    base_commit: str
    status: Literal["succeeded", "validation_failed", "generation_failed", "needs_clarification", "needs_approval"]
    """`generation_failed`: no generated version could be validated; `needs_clarification`: the
    issue's author is asked `question`; `needs_approval`: `plan` waits for a person's approval."""
    branch: str | None
    commit: str | None
    changed_files: list[str]
    changelog: str | None
    validation: ValidationReport
    spec: Spec | None
    """The spec the run worked from: the YAML one, or the one normalised from a free-text issue."""
    summary_path: str
    patch_path: str
    warnings: list[str] = []
    plan: Plan | None = None
    """The plan tried last (with the generated code), when the change was generated."""
    attempts: list[Attempt] = []
    stopped_because: str | None = None
    question: str | None = None
    core: Literal["diffusion", "llm"] | None = None
    """The model core that filled the generated code; None when nothing was generated."""


CoreChooser = Callable[[Sequence[Mapping[str, Any]], Sequence[str]], str]
"""(the plan's operations as JSON data, the cores available) → the core to use."""


@dataclass
class Models:
    """The models a run may use. None is needed for a spec whose operations all carry their code."""

    llm: TextGenerator | None = None
    scorer: TextGenerator | None = None
    """Ranks plans; the LLM itself when None."""
    normaliser: TextGenerator | None = None
    """Reads free-text issues into specs; the LLM itself when None."""
    denoiser: Denoiser | None = None
    """Fills scaffold holes; the LLM does (through `LLMFiller`) when None."""
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    localiser: Localiser | None = None
    """How an issue is localised; from `generation.localise` when None."""
    core_chooser: CoreChooser | None = None
    """Picks the diffusion model or the LLM per job (the learned core predictor); with a denoiser and
    no chooser, the denoiser fills."""


@dataclass(frozen=True)
class JobContext:
    """One run's surroundings: settings, the user's repository, the work copy, state and sandbox."""

    settings: Settings
    info: RepoInfo
    wt: Worktree
    state: RepoState
    job_dir: Path
    sandbox: Sandbox
    phase: Phase


@dataclass(frozen=True)
class Prepared:
    """What profiling and digestion gave: the style, the ruff config written for it, parse problems."""

    profile: StyleProfile
    ruff_config: Path
    problems: list[str]


def _job_id(key: str) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    return f"{stamp}-{digest}"


def _dirty_paths(repo: Path) -> set[str]:
    # Through run_git: its GIT_OPTIONAL_LOCKS=0 keeps `git status` from rewriting the user's index.
    out = run_git(["-c", "core.quotepath=off", "status", "--porcelain", "-z", "--untracked-files=all"], repo)
    return {entry[3:] for entry in out.stdout.decode("utf-8", "surrogateescape").split("\0") if len(entry) > 3}


def refuse_if_in_the_way(info: RepoInfo, touched: list[str]) -> list[str]:
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


def _select_tests(state: RepoState, spec: Spec, touched: list[str]) -> list[str] | None:
    graph = KnowledgeGraph(state.graph_db)
    try:
        return graph.tests_reaching([op.target for op in spec.operations], touched)
    finally:
        graph.close()


def prepare(job: JobContext) -> Prepared:
    """Phases 1–2 on the work copy: profile the style, write its artifacts, digest the repository."""
    job.phase("profiling style")
    profile = profile_style(job.wt.path)
    artifacts = write_style_artifacts(profile, job.wt.path, job.state.style_dir)
    job.phase("digesting repository")
    digest = digest_repository(job.wt.path, job.state.graph_db)
    problems = [f"{p.path} could not be parsed ({p.message}); it was left as it is" for p in digest.parse_errors]
    return Prepared(profile, artifacts["ruff_config"], problems)


def run_spec(
    settings: Settings,
    spec: Spec,
    repo: Path,
    *,
    sandbox: Sandbox,
    base: str | None = None,
    phase: Phase = lambda _: None,
    models: Models | None = None,
) -> RunReport:
    """Run the whole local pipeline on `repo`; the user's checkout is never touched.

    A spec whose generative operations carry no code needs `models.llm`; any other spec runs
    without a model.
    """
    models = models or Models()
    if spec.needs_model and models.llm is None:
        waiting = [f"{op.op} {op.target}" for op in spec.operations if getattr(op, "needs_code", False)]
        raise SpecError(
            f"no language model is configured to write the code of: {', '.join(waiting)}",
            hint="give the code in the spec (source or body), or configure a model in config.yaml",
        )
    return _with_job(
        settings, repo, base, spec.model_dump_json(), sandbox, phase, lambda job: _spec_job(job, spec, models)
    )


def run_issue(
    settings: Settings,
    text: str,
    repo: Path,
    *,
    sandbox: Sandbox,
    base: str | None = None,
    phase: Phase = lambda _: None,
    models: Models | None = None,
    source: str = "issue",
    plan_only: bool = False,
) -> RunReport:
    """Run the pipeline from an issue's text: its ```yaml block when it has one (no model needed),
    otherwise the spec and plans the language model derives from the free text (with `plan_only`,
    stop with status `needs_approval` and the best plan instead of generating)."""
    models = models or Models()
    spec = spec_from_text(text, source=source, yaml_only=source.endswith((".yaml", ".yml")))
    if spec is not None:
        return run_spec(settings, spec, repo, sandbox=sandbox, base=base, phase=phase, models=models)
    llm = models.llm
    if llm is None:
        raise SpecError(
            f"{source} has no ```yaml spec block, and no language model is configured to read free text",
            hint="add a spec block (see docs/SPEC.md), or configure a model in config.yaml",
        )
    # Imported here: the planner, prompts and generation loop load only for free-text issues.
    from diffusellm.worker.collaborate_job import issue_job

    return _with_job(
        settings, repo, base, text, sandbox, phase, lambda job: issue_job(job, text, llm, models, source, plan_only)
    )


def _with_job(
    settings: Settings,
    repo: Path,
    base: str | None,
    key: str,
    sandbox: Sandbox,
    phase: Phase,
    work: Callable[[JobContext], RunReport],
) -> RunReport:
    info = open_repository(repo)
    base_commit = resolve_base(info, base)
    state = repo_state(settings.state_path(), info.root).ensure()
    job_id = _job_id(key)
    job_dir = state.jobs / job_id
    job_dir.mkdir(parents=True)
    log.info("job.start", job=job_id, repo=str(info.root), base=base_commit)
    wt = create_worktree(info.root, base_commit, state.worktrees, job_id)
    try:
        return work(JobContext(settings, info, wt, state, job_dir, sandbox, phase))
    finally:
        remove_worktree(wt)


def _spec_job(job: JobContext, spec: Spec, models: Models) -> RunReport:
    prep = prepare(job)
    if spec.needs_model:
        from diffusellm.worker.collaborate_job import generate

        planned = plan_written_spec(spec, root=job.wt.path, graph_db=job.state.graph_db, settings=models.generation)
        return generate(job, prep, planned, models)
    job.phase("applying operations")
    context = GenerativeContext(trie=signature_trie(job.state, spec.operations))
    changes = apply_operations(job.wt.path, spec.operations, context=context)
    warnings = refuse_if_in_the_way(job.info, sorted(changes)) + prep.problems + context.warnings
    write_changes(job.wt.path, changes)
    format_changed(job, prep)
    changelog = write_changelog(job, prep, spec)
    touched = changed_files(job.wt)
    job.phase("validating in sandbox")
    report = validate_job(job, spec, touched, prep.ruff_config)
    return finish_job(job, prep, spec, report, touched, changelog, warnings)


def signature_trie(state: RepoState, operations: Sequence[Operation]) -> SignatureTrie | None:
    """The signature trie, when an operation adds a function (to refuse duplicates)."""
    if not any(isinstance(op, AddFunction) for op in operations):
        return None
    with KnowledgeGraph(state.graph_db) as graph:
        return SignatureTrie.from_graph(graph)


def format_changed(job: JobContext, prep: Prepared) -> None:
    """Format the changed lines (only those) with ruff format, when the settings ask for it."""
    python = job.settings.validation.python or _default_python()
    if job.settings.commit.format_changed:
        format_changed_code(job.wt.path, changed_line_ranges(job.wt), prep.ruff_config, python)


def write_changelog(job: JobContext, prep: Prepared, spec: Spec) -> str | None:
    """A changelog entry in the repository's format; its path, or None."""
    if not job.settings.commit.changelog:
        return None
    return changelog_entry(prep.profile.changelog, spec, job.wt.path, job_id=job.job_dir.name)


def finish_job(
    job: JobContext,
    prep: Prepared,
    spec: Spec,
    report: ValidationReport | None,
    touched: list[str],
    changelog: str | None,
    warnings: list[str],
    *,
    status: str | None = None,
    spec_shown: Spec | None = None,
    notes: str = "",
    **generated: object,
) -> RunReport:
    """Save the patch, commit when allowed, write summary.md and report.json (no `report`: nothing
    was validated, and `status` says why)."""
    status = status or ("succeeded" if report is not None and report.passed else "validation_failed")
    patch = _save_patch(job.wt, job.job_dir)
    committable = status == "succeeded" or (status == "validation_failed" and job.settings.commit.keep_failed)
    branch, commit = _commit(job, spec, prep.profile) if committable else (None, None)
    summary = summary_markdown(
        spec,
        changed_files=touched,
        report=report,
        changelog_path=changelog,
        branch=branch or "(not created)",
        commit=commit,
    )
    summary += f"\n### Attempts\n\n{notes}" if notes else ""
    (job.job_dir / "summary.md").write_text(summary, encoding="utf-8")
    result = RunReport.model_validate(
        {
            "job_id": job.job_dir.name,
            "repo": str(job.info.root),
            "base_commit": job.wt.base_commit,
            "status": status,
            "branch": branch,
            "commit": commit,
            "changed_files": touched,
            "changelog": changelog,
            "validation": report or ValidationReport(),
            "spec": spec_shown or spec,
            "summary_path": str(job.job_dir / "summary.md"),
            "patch_path": str(patch),
            "warnings": warnings,
            **generated,
        }
    )
    (job.job_dir / "report.json").write_text(result.model_dump_json(indent=2), encoding="utf-8")
    return result


def _default_python() -> str:
    return sys.executable


def _added_tests(spec: Spec) -> list[str]:
    """Test files the spec adds tests to: they must pass outright, like acceptance tests."""
    return sorted({op.path for op in spec.operations if isinstance(op, AddTest)})


def validate_job(job: JobContext, spec: Spec, touched: list[str], ruff_config: Path) -> ValidationReport:
    """Phase 6: the checks in the sandbox against the base commit; new tests must pass outright."""
    tests = _select_tests(job.state, spec, [f for f in touched if f.endswith((".py", ".pyi"))])
    acceptance = list(dict.fromkeys([*spec.acceptance.tests, *_added_tests(spec)]))
    with tempfile.TemporaryDirectory(prefix="diffusellm-base-") as tmp:
        base_dir = export_checkout(job.wt.repo, job.wt.base_commit, Path(tmp) / "base")
        return validate_change(
            base_dir=base_dir,
            head_dir=job.wt.path,
            changed_files=touched,
            tests=tests,
            acceptance_tests=acceptance,
            sandbox=job.sandbox,
            settings=job.settings.validation,
            ruff_config=ruff_config,
            renames=_renames(spec),
        )


def _renames(spec: Spec) -> dict[str, str]:
    """New name → old name of every rename in the spec, to match respelled base failures."""
    return {op.new_name: op.target.rsplit(".", 1)[-1] for op in spec.operations if isinstance(op, RenameSymbol)}


def _save_patch(wt: Worktree, job_dir: Path) -> Path:
    run_git(["add", "-A"], wt.path)
    diff = run_git(["diff", "--cached", "--binary", wt.base_commit], wt.path).stdout
    path = job_dir / "change.patch"
    path.write_bytes(diff)
    return path


def _commit(job: JobContext, spec: Spec, profile: StyleProfile) -> tuple[str, str]:
    settings = job.settings
    message = commit_message(profile.commit_convention, spec, profile.commit_examples)
    branch = branch_name(settings.commit.branch_prefix, spec.title, job.info.root)
    sha = commit_and_branch(
        job.wt,
        branch=branch,
        message=message,
        author_name=settings.commit.author_name,
        author_email=settings.commit.author_email,
    )
    return branch, sha
