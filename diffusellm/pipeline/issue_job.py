"""Phases 3–5 inside a run: plan from an issue, then generate, validate and repair in the work copy."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from diffusellm.errors import OperationError
from diffusellm.models.base import TextGenerator
from diffusellm.pipeline.deliver.text import change_title
from diffusellm.pipeline.generate.loop import TrialResult, collaborate, explain
from diffusellm.pipeline.generate.regions import written_functions
from diffusellm.pipeline.issue_plan import (
    Localiser,
    Located,
    Planned,
    locate_localiser,
    overlap_localiser,
    plan_issue,
)
from diffusellm.pipeline.job import (
    JobContext,
    Models,
    Prepared,
    RunReport,
    finish_job,
    format_changed,
    prepare,
    refuse_if_in_the_way,
    signature_trie,
    validate_job,
    write_changelog,
)
from diffusellm.pipeline.operations.apply import apply_operations, write_changes
from diffusellm.pipeline.operations.generative.functions import GenerativeContext
from diffusellm.pipeline.plan.candidates import Plan
from diffusellm.pipeline.project import Project
from diffusellm.pipeline.spec import GenerativeOperation, Operation, Spec
from diffusellm.pipeline.validate.report import ValidationReport
from diffusellm.pipeline.workspace import Worktree, changed_files, export_checkout, run_git


def issue_job(
    job: JobContext, text: str, llm: TextGenerator, models: Models, source: str, plan_only: bool = False
) -> RunReport:
    prep = prepare(job)
    job.phase("reading the issue and planning")
    gen = models.generation
    planned = plan_issue(
        text,
        root=job.wt.path,
        graph_db=job.state.graph_db,
        llm=llm,
        scorer=models.scorer,
        profile=prep.profile,
        settings=gen,
        localiser=_localiser(job, models),
        source=source,
        normaliser=models.normaliser,
    )
    if planned.question is not None:
        body = f"## Question\n\n{planned.question.question}\n\n_Why:_ {planned.question.reason}\n"
        return early_report(
            job, None, "needs_clarification", body, question=planned.question.question, located=planned.located
        )
    best = planned.plans[0]
    if plan_only or (gen.stop_for_approval and best.requires_approval):
        body = f"## Plan waiting for approval\n\n{best.rationale}\n\n- " + "\n- ".join(best.approval_reasons)
        return early_report(job, planned.spec, "needs_approval", body + "\n", plan=best, located=planned.located)
    return generate(job, prep, planned, models)


def _localiser(job: JobContext, models: Models) -> Localiser:
    if models.localiser is not None:
        return models.localiser
    if models.generation.localise == "overlap":
        return overlap_localiser
    return locate_localiser(job.state.root / "locate", job.settings.state_path() / "models", models.generation.locate)


def generate(job: JobContext, prep: Prepared, planned: Planned, models: Models) -> RunReport:
    """Phase 5: generate, validate and repair over the plans; finish with the last version tried."""
    assert models.llm is not None and planned.spec is not None
    core = choose_core(models, planned.plans[0])
    writes = any(isinstance(op, GenerativeOperation) and op.needs_code for op in planned.plans[0].operations)
    job.phase("generating code" if writes else "applying operations")
    with tempfile.TemporaryDirectory(prefix="diffusellm-draft-") as tmp:
        pristine = export_checkout(job.wt.repo, job.wt.base_commit, Path(tmp) / "base")
        result = collaborate(
            planned.plans,
            root=pristine,
            llm=models.llm,
            trial=_trial(job, prep, planned.spec),
            profile=prep.profile,
            denoiser=models.denoiser if core == "diffusion" else None,
            limits=models.generation.limits,
            nearby=planned.loc.context,
        )
    operations = result.operations or list(planned.spec.operations)
    final = planned.spec.model_copy(update={"operations": operations})
    final = final.model_copy(update={"title": change_title(final)})  # what was changed, not what was asked
    warnings = refuse_if_in_the_way(job.info, changed_files(job.wt)) + prep.problems + planned.notes
    changelog = write_changelog(job, prep, final) if result.succeeded else None
    touched = changed_files(job.wt)
    report = result.report
    status = "succeeded" if result.succeeded else "validation_failed" if report else "generation_failed"
    plan = None
    if result.plan_index is not None:
        plan = planned.plans[result.plan_index].model_copy(update={"operations": final.operations})
    return finish_job(
        job,
        prep,
        final,
        report,
        touched,
        changelog,
        warnings,
        status=status,
        spec_shown=planned.spec,
        plan=plan,
        attempts=result.attempts,
        stopped_because=result.stopped_because,
        notes=explain(result),
        core=core,
    )


def choose_core(models: Models, plan: Plan) -> Literal["diffusion", "llm"]:
    """The diffusion model when one is loaded (or the learned chooser prefers it), else the LLM."""
    if models.denoiser is None:
        return "llm"
    if models.core_chooser is None:
        return "diffusion"
    operations = [op.model_dump(mode="json") for op in plan.operations]
    return "llm" if models.core_chooser(operations, ("diffusion", "llm")) == "llm" else "diffusion"


def _trial(job: JobContext, prep: Prepared, spec: Spec) -> Callable[[Sequence[Operation]], TrialResult]:
    """Apply one version of the operations to the clean work copy, format it and validate it."""

    def trial(operations: Sequence[Operation]) -> TrialResult:
        _reset(job.wt)
        context = GenerativeContext(trie=signature_trie(job.state, operations))
        try:
            changes = apply_operations(job.wt.path, operations, context=context, python=prep.python)
        except OperationError as exc:
            return TrialResult(report=None, error=exc.message)
        write_changes(job.wt.path, changes)
        format_changed(job, prep)
        written = written_functions(Project.load(job.wt.path), operations)
        attempt = spec.model_copy(update={"operations": list(operations)})
        job.phase("validating in sandbox")
        report = validate_job(job, attempt, changed_files(job.wt), prep.ruff_config, prep.environment)
        return TrialResult(report=report, written=written)

    return trial


def _reset(wt: Worktree) -> None:
    """Put the work copy back to the base commit before the next version is applied."""
    run_git(["reset", "-q", "--hard", wt.base_commit], wt.path)
    run_git(["clean", "-q", "-f", "-d"], wt.path)


def early_report(
    job: JobContext,
    spec: Spec | None,
    status: str,
    body: str,
    *,
    question: str | None = None,
    plan: Plan | None = None,
    located: Located | None = None,
) -> RunReport:
    """The report of a run that stops before changing anything: a question, or a plan to approve."""
    (job.job_dir / "summary.md").write_text(body, encoding="utf-8")
    patch = job.job_dir / "change.patch"
    patch.write_bytes(b"")
    result = RunReport.model_validate(
        {
            "job_id": job.job_dir.name,
            "repo": str(job.info.root),
            "base_commit": job.wt.base_commit,
            "status": status,
            "branch": None,
            "commit": None,
            "changed_files": [],
            "changelog": None,
            "validation": ValidationReport(),
            "spec": spec,
            "summary_path": str(job.job_dir / "summary.md"),
            "patch_path": str(patch),
            "plan": plan,
            "question": question,
            "located": located,
        }
    )
    (job.job_dir / "report.json").write_text(result.model_dump_json(indent=2), encoding="utf-8")
    return result
