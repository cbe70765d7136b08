"""The local pipeline: profile, digest, apply or generate the change, validate in the sandbox, commit.

`run_spec` and `run_issue` are the one place that chains the phases."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from pathlib import Path

import structlog

from diffusellm.config import Settings
from diffusellm.errors import SpecError
from diffusellm.pipeline.issue_job import early_report, generate, issue_job
from diffusellm.pipeline.issue_plan import plan_written_spec
from diffusellm.pipeline.job import (
    JobContext,
    Models,
    Phase,
    RunReport,
    finish_job,
    format_changed,
    prepare,
    refuse_if_in_the_way,
    signature_trie,
    validate_job,
    write_changelog,
)
from diffusellm.pipeline.normalise.issue import spec_from_text
from diffusellm.pipeline.operations.apply import apply_operations, write_changes
from diffusellm.pipeline.operations.generative.functions import GenerativeContext
from diffusellm.pipeline.settings import GenerationSettings
from diffusellm.pipeline.spec import Spec
from diffusellm.pipeline.validate.sandbox import Sandbox
from diffusellm.pipeline.workspace import (
    changed_files,
    create_worktree,
    open_repository,
    remove_worktree,
    resolve_base,
)
from diffusellm.state import repo_state

log = structlog.get_logger(__name__)


def _job_id(key: str) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    return f"{stamp}-{digest}"


def run_spec(
    settings: Settings,
    spec: Spec,
    repo: Path,
    *,
    sandbox: Sandbox,
    base: str | None = None,
    phase: Phase = lambda _: None,
    models: Models | None = None,
    issue: int | None = None,
) -> RunReport:
    """Run the whole local pipeline on `repo`; the user's checkout is never touched.

    A spec whose generative operations carry no code needs `models.llm`; any other spec runs
    without a model. `issue`, the issue number the run answers, is cited in the changelog entry.
    """
    models = models or Models()
    if spec.needs_model and models.llm is None:
        waiting = [f"{op.op} {op.target}" for op in spec.operations if getattr(op, "needs_code", False)]
        raise SpecError(
            f"no language model is configured to write the code of: {', '.join(waiting)}",
            hint="give the code in the spec (source or body), or configure a model in config.yaml",
        )
    return _with_job(
        settings, repo, base, spec.model_dump_json(), sandbox, phase, lambda job: _spec_job(job, spec, models), issue
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
    issue: int | None = None,
) -> RunReport:
    """Run the pipeline from an issue's text: its ```yaml block when it has one (no model needed),
    otherwise the spec and plans the language model derives from the free text (with `plan_only`,
    stop with status `needs_approval` and the best plan instead of generating)."""
    models = models or Models()
    spec = spec_from_text(text, source=source, yaml_only=source.endswith((".yaml", ".yml")))
    if spec is not None and plan_only:
        generation = models.generation
        key = spec.model_dump_json()
        return _with_job(settings, repo, base, key, sandbox, phase, lambda job: _spec_plan(job, spec, generation))
    if spec is not None:
        return run_spec(settings, spec, repo, sandbox=sandbox, base=base, phase=phase, models=models, issue=issue)
    llm = models.llm
    if llm is None:
        raise SpecError(
            f"{source} has no ```yaml spec block, and no language model is configured to read free text",
            hint="add a spec block (see docs/SPEC.md), or configure a model in config.yaml",
        )
    return _with_job(
        settings, repo, base, text, sandbox, phase, lambda job: issue_job(job, text, llm, models, source, plan_only),
        issue,
    )


def _with_job(
    settings: Settings,
    repo: Path,
    base: str | None,
    key: str,
    sandbox: Sandbox,
    phase: Phase,
    work: Callable[[JobContext], RunReport],
    issue: int | None = None,
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
        return work(JobContext(settings, info, wt, state, job_dir, sandbox, phase, issue))
    finally:
        remove_worktree(wt)


def _spec_plan(job: JobContext, spec: Spec, generation: GenerationSettings) -> RunReport:
    """A written spec's dry run: its one plan (the spec as written) and the code it points at."""
    prepare(job)
    job.phase("locating the code")
    planned = plan_written_spec(spec, root=job.wt.path, graph_db=job.state.graph_db, settings=generation)
    body = "## Plan\n\nThe operations the spec lists, as written.\n"
    return early_report(job, spec, "needs_approval", body, plan=planned.plans[0], located=planned.located)


def _spec_job(job: JobContext, spec: Spec, models: Models) -> RunReport:
    prep = prepare(job)
    if spec.needs_model:
        planned = plan_written_spec(spec, root=job.wt.path, graph_db=job.state.graph_db, settings=models.generation)
        return generate(job, prep, planned, models)
    job.phase("applying operations")
    context = GenerativeContext(trie=signature_trie(job.state, spec.operations))
    changes = apply_operations(job.wt.path, spec.operations, context=context, python=prep.python)
    warnings = refuse_if_in_the_way(job.info, sorted(changes)) + prep.problems + context.warnings
    write_changes(job.wt.path, changes)
    format_changed(job, prep)
    changelog = write_changelog(job, prep, spec)
    touched = changed_files(job.wt)
    job.phase("validating in sandbox")
    report = validate_job(job, spec, touched, prep.ruff_config, prep.environment)
    return finish_job(job, prep, spec, report, touched, changelog, warnings)


