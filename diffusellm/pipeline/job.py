"""One run of the pipeline: its context, phases 1–2 on the work copy, and the steps every run ends with
(format, changelog, validate, commit, report)."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import structlog
from pydantic import BaseModel, ConfigDict

from diffusellm.config import Settings
from diffusellm.errors import RepositoryError
from diffusellm.models.base import Denoiser, TextGenerator
from diffusellm.pipeline.deliver.commit import (
    changed_line_ranges,
    changelog_entry,
    commit_message,
    format_changed_code,
    summary_markdown,
)
from diffusellm.pipeline.deliver.summary import convention_lines
from diffusellm.pipeline.generate.loop import Attempt
from diffusellm.pipeline.issue_plan import Localiser, Located
from diffusellm.pipeline.plan.candidates import Plan
from diffusellm.pipeline.settings import GenerationSettings
from diffusellm.pipeline.spec import AddFunction, AddTest, MoveSymbol, Operation, RenameSymbol, Spec
from diffusellm.pipeline.understand.digest.build import digest_repository
from diffusellm.pipeline.understand.graph import KnowledgeGraph
from diffusellm.pipeline.understand.style.infer import profile_style, write_style_artifacts
from diffusellm.pipeline.understand.style.profile import StyleProfile
from diffusellm.pipeline.understand.trie import SignatureTrie
from diffusellm.pipeline.validate.checks import validate_change
from diffusellm.pipeline.validate.env_cache import Environment, prepare_environment
from diffusellm.pipeline.validate.environment import EnvironmentInfo
from diffusellm.pipeline.validate.report import ValidationReport
from diffusellm.pipeline.validate.sandbox import Sandbox
from diffusellm.pipeline.workspace import (
    RepoInfo,
    Worktree,
    branch_name,
    commit_and_branch,
    export_checkout,
    run_git,
)
from diffusellm.state import RepoState

Phase = Callable[[str], None]
log = structlog.get_logger(__name__)


class RunReport(BaseModel):
    """What a run did: the branch it left, the files it changed and how validation went."""

    model_config = ConfigDict(extra="forbid")

    job_id: str
    repo: str
    base_commit: str
    status: Literal[
        "succeeded", "validation_failed", "not_validated", "generation_failed", "needs_clarification",
        "needs_approval",
    ]
    """`not_validated`: a required check could not run (no branch, whatever `keep_failed` says);
    `generation_failed`: no generated version could be validated; `needs_clarification`: the
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
    conventions: list[str] = []
    """What the run took from the repository's own conventions (declared style, changelog, test
    command, instruction files), each with where it came from."""
    located: Located | None = None
    """The files and functions localisation found, with reasons (runs that read an issue)."""


def planned_spec(report: RunReport) -> Spec:
    """The spec of a plan-only run, with the operations of the plan it would try first."""
    assert report.spec is not None
    if report.plan is None:
        return report.spec
    return report.spec.model_copy(update={"operations": list(report.plan.operations)})


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
    issue_number: int | None = None
    """The issue the run answers, cited by the changelog entry; None in local runs."""


@dataclass(frozen=True)
class Prepared:
    """What profiling and digestion gave: the style, the ruff config written for it, parse problems."""

    profile: StyleProfile
    ruff_config: Path
    problems: list[str]
    environment: Environment | EnvironmentInfo | None = None
    """The repository's own test environment (or why it could not be built): the checks run in it
    and reference finding (jedi) resolves imports in it."""

    @property
    def python(self) -> str | None:
        """The environment's interpreter, when one was built."""
        return str(self.environment.python) if isinstance(self.environment, Environment) else None


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
    job.phase("building the repository's environment")
    environment = prepare_environment(
        job.wt.path, job.settings.validation.environment,
        default_python=job.settings.validation.python or _default_python(),
        cache_dir=job.settings.state_path() / "environments", sandbox=job.sandbox,
    )
    return Prepared(profile, artifacts["ruff_config"], problems, environment)


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
    return changelog_entry(
        prep.profile.changelog, spec, job.wt.path, job_id=job.job_dir.name, issue_number=job.issue_number
    )


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
    if report is not None and report.missing and not report.failed and status in ("succeeded", "validation_failed"):
        status = "not_validated"
        generated = {**generated, "stopped_because": not_validated_text(report)}
    patch = _save_patch(job.wt, job.job_dir)
    committable = status == "succeeded" or (status == "validation_failed" and job.settings.commit.keep_failed)
    branch, commit = _commit(job, spec, prep.profile) if committable else (None, None)
    conventions = convention_lines(prep.profile)
    summary = summary_markdown(
        spec,
        changed_files=touched,
        report=report,
        changelog_path=changelog,
        branch=branch or "(not created)",
        commit=commit,
        conventions=conventions,
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
            "conventions": conventions,
            **generated,
        }
    )
    (job.job_dir / "report.json").write_text(result.model_dump_json(indent=2), encoding="utf-8")
    return result


def _default_python() -> str:
    return sys.executable


def not_validated_text(report: ValidationReport) -> str:
    """Why a change was not validated, and how to make the required checks run."""
    return (
        "not validated: required check(s) did not run (" + "; ".join(report.missing) + "); add a "
        "`setup:` list of install commands (and `python:`) to .github/diffusellm.yml so the "
        "repository's tests can run, or narrow `require:` there to opt out"
    )


def _added_tests(spec: Spec) -> list[str]:
    """Test files the spec adds tests to: they must pass outright, like acceptance tests."""
    return sorted({op.path for op in spec.operations if isinstance(op, AddTest)})


def validate_job(
    job: JobContext, spec: Spec, touched: list[str], ruff_config: Path,
    environment: Environment | EnvironmentInfo | None = None,
) -> ValidationReport:
    """Phase 6: the checks in the sandbox against the base commit; new tests must pass outright."""
    tests = _select_tests(job.state, spec, [f for f in touched if f.endswith((".py", ".pyi"))])
    if tests is not None:  # added tests count as selected; no test reaching the change: the whole suite
        tests = [*tests, *_added_tests(spec)] or None
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
            environment=environment,
            moves=_moves(spec),
        )


def _renames(spec: Spec) -> dict[str, str]:
    """New name → old name of every rename in the spec, to match respelled base failures."""
    return {op.new_name: op.target.rsplit(".", 1)[-1] for op in spec.operations if isinstance(op, RenameSymbol)}


def _moves(spec: Spec) -> dict[str, str]:
    """New qualname → old of every moved definition, so its findings follow it."""
    return {
        f"{op.to_module}.{op.target.rsplit('.', 1)[-1]}": op.target
        for op in spec.operations if isinstance(op, MoveSymbol)
    }


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
