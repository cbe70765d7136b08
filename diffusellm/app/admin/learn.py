"""Admin pages, learning loop: pull-request verdicts and model cores over time (every worker's runs, from
the job store), and this app's state folder: its remembered runs, trained adapters, core predictor."""

from __future__ import annotations

import os
import socket
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diffusellm.app.admin.learn_data import core_series, core_tallies, loss_series, pr_series, pr_verdict
from diffusellm.errors import InputError
from diffusellm.jobs.model import Job, JobState, JobStore
from diffusellm.jobs.wire import LearningReport
from diffusellm.learn.commands import adapters
from diffusellm.learn.core_predictor import PREDICTOR_FILE, CorePredictor, training_rows
from diffusellm.learn.outcomes import Outcome, OutcomeStore
from diffusellm.learn.quality import MIN_EXAMPLES

RECENT = 20
SCANNED_JOBS = 500


@dataclass(frozen=True)
class AdapterRow:
    """One trained adapter as the page lists it."""

    folder: str
    date: str
    base_model: str
    examples: str
    steps: str
    loss: str
    seconds: str
    warnings: list[str] = field(default_factory=list[str])


@dataclass(frozen=True)
class CoreRow:
    """One model core: its runs (all workers), and what this app's core predictor makes of it."""

    core: str
    runs: int
    validated: int
    rate: str
    accuracy: str
    """The predictor's accuracy on the remembered runs of this core ("" while it does not decide)."""
    status: str


@dataclass(frozen=True)
class RepoAdapter:
    """The adapter behind the latest run of one repository."""

    repo: str
    job: str
    worker: str
    adapter: str


@dataclass(frozen=True)
class WorkerRow:
    """A remote worker's latest learning report."""

    worker: str
    received: str
    active: str
    adapters: int
    runs: str


@dataclass(frozen=True)
class LearnView:
    """What the learning page shows."""

    verdicts: dict[str, int]
    """Succeeded jobs among the latest ones, by verdict (`open` while the pull request is)."""
    outcomes: dict[str, int]
    recent: list[dict[str, Any]]
    adapters: list[AdapterRow]
    charts: dict[str, Any]
    cores: list[CoreRow]
    picks: str
    active: str
    repos: list[RepoAdapter]
    workers: list[WorkerRow] = field(default_factory=list[WorkerRow])
    memory_error: str = ""


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _record_warnings(data: dict[str, Any]) -> list[str]:
    recorded = data.get("warnings")
    if isinstance(recorded, list):
        return [str(w) for w in recorded]  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
    examples = data.get("examples")  # a record from before warnings were written
    if isinstance(examples, int) and examples < MIN_EXAMPLES:
        return [f"only {examples} training example(s): below {MIN_EXAMPLES} an adapter mostly memorises them"]
    return []


def _adapter_row(data: dict[str, Any]) -> AdapterRow:
    first, last = data.get("first_loss"), data.get("last_loss")
    loss = f"{first:.3f} → {last:.3f}" if isinstance(first, float) and isinstance(last, float) else ""
    return AdapterRow(
        folder=_text(data.get("adapter")), date=_text(data.get("date")), base_model=_text(data.get("base_model")),
        examples=_text(data.get("examples")), steps=_text(data.get("steps")), loss=loss,
        seconds=_text(data.get("seconds")), warnings=_record_warnings(data),
    )


def job_verdicts(jobs: list[Job]) -> dict[str, int]:
    """Succeeded jobs with a pull request: accepted, rejected, or still open."""
    found = [v for j in jobs if j.state is JobState.SUCCEEDED and (v := pr_verdict(j)) is not None]
    return {key: found.count(key) for key in ("accepted", "rejected", "open")}


def _predictor(state_dir: Path) -> CorePredictor | None:
    path = state_dir / "learn" / PREDICTOR_FILE
    try:
        return CorePredictor.load(path) if path.is_file() else None
    except InputError:
        return None


def _accuracy(predictor: CorePredictor, core: str, outcomes: list[Outcome]) -> str:
    """How often the predictor was right about the remembered runs of `core` ("" while it does not decide)."""
    rows = training_rows(outcomes).get(core, [])
    chances = [(predictor.probability(core, features), validated) for features, validated in rows]
    judged = [(chance >= 0.5) == validated for chance, validated in chances if chance is not None]
    return f"{100 * sum(judged) / len(judged):.0f}% of {len(judged)}" if judged else ""


def core_rows(jobs: list[Job], predictor: CorePredictor | None, outcomes: list[Outcome]) -> tuple[list[CoreRow], str]:
    """The table of cores and, in words, which core the predictor picks."""
    rows: list[CoreRow] = []
    for tally in core_tallies(jobs):
        status, accuracy = "no predictor trained here", ""
        if predictor is not None:
            tried = predictor.examples.get(tally.core, 0)
            deciding = tried >= predictor.min_examples
            status = "deciding" if deciding else f"exploring: {tried} of {predictor.min_examples} runs"
            accuracy = _accuracy(predictor, tally.core, outcomes)
        rows.append(CoreRow(tally.core, tally.runs, tally.validated, tally.rate, accuracy, status))
    if predictor is None:
        return rows, "No core predictor in this app's state folder: the diffusion model fills every job it can."
    untried = [c for c, n in predictor.examples.items() if n < predictor.min_examples]
    if untried:
        least = min(untried, key=lambda c: predictor.examples.get(c, 0))
        return rows, (f"Picks {least} next: each core is tried until it has {predictor.min_examples} runs "
                      f"(trained {predictor.trained_at}).")
    return rows, f"Picks, per job, the core likelier to validate (trained {predictor.trained_at})."


def _in_process(worker: str) -> bool:
    """Whether `worker` is this app process's embedded worker (its id starts with host and pid)."""
    return worker.startswith(f"{socket.gethostname()}-{os.getpid()}-")


def _loaded(adapters: list[str]) -> str:
    return ", ".join(adapters) or "none (the base model)"


def _reporter(worker: str, reports: list[LearningReport]) -> LearningReport | None:
    """The report of the host a job's worker id belongs to (worker ids start with the host name)."""
    return next((r for r in reports if worker == r.worker_id or worker.startswith(f"{r.worker_id}-")), None)


def repo_adapters(jobs: list[Job], app_adapters: list[str] | None,
                  reports: Sequence[LearningReport] = ()) -> list[RepoAdapter]:
    """Per repository, the latest run's worker and the adapters it loads (known for this app's own worker
    and for workers that sent a learning report)."""
    latest: dict[str, Job] = {}
    for job in jobs:  # newest first
        if job.worker_id and job.request.repo_full_name not in latest:
            latest[job.request.repo_full_name] = job
    rows: list[RepoAdapter] = []
    for repo, job in sorted(latest.items()):
        worker = job.worker_id or ""
        report = _reporter(worker, list(reports))
        if app_adapters is not None and _in_process(worker):
            adapter = _loaded(app_adapters)
        elif report is not None:
            adapter = _loaded(report.active_adapters)
        else:
            adapter = "not reported: run `diffusellm learn sync --server URL` on that worker"
        rows.append(RepoAdapter(repo, job.id, worker, adapter))
    return rows


def _reported(report: LearningReport) -> list[dict[str, Any]]:
    """A worker's adapters as training records, named after the worker."""
    return [{**a.model_dump(), "adapter": f"{report.worker_id}: {a.name}", "label": f"{report.worker_id}: {a.name}"}
            for a in report.adapters]


def worker_rows(reports: Sequence[tuple[LearningReport, str]]) -> list[WorkerRow]:
    """One line per worker that sent a learning report."""
    return [WorkerRow(r.worker_id, received, _loaded(r.active_adapters), len(r.adapters),
                      " · ".join(f"{k}: {n}" for k, n in sorted(r.verdict_counts.items())) or "none")
            for r, received in reports]


def learn_view(store: JobStore, state_dir: Path, app_adapters: list[str] | None = None,
               reports: Sequence[tuple[LearningReport, str]] = ()) -> LearnView:
    """The learning page's data; an unreadable outcome memory is shown, not raised. `app_adapters`:
    what this app's in-process worker loads (None when it runs none); `reports`: workers' learning
    reports and when they arrived."""
    local = adapters(state_dir)
    remote = [record for report, _ in reports for record in _reported(report)]
    rows = [_adapter_row(a) for a in [*local, *remote]]
    jobs = store.list_jobs(limit=SCANNED_JOBS)
    curves = [{**r, "label": Path(str(r.get("adapter", ""))).name} for r in reversed(local)] + remote
    charts = {"prs": pr_series(jobs), "cores": core_series(jobs), "loss": loss_series(curves)}
    active = ("This app runs no in-process worker." if app_adapters is None else
              f"This app's in-process worker loads: {', '.join(app_adapters) or 'no adapter (the base model)'}.")
    error, outcomes, recent, counts = "", list[Outcome](), list[dict[str, Any]](), dict[str, int]()
    try:
        memory = OutcomeStore.in_state(state_dir)
        outcomes, counts = memory.outcomes(), memory.counts()
        recent = [{"job": o.job_id, "repo": o.repo, "title": o.title, "status": o.status, "verdict": o.verdict,
                   "when": o.created_at, "core": o.core or ""} for o in reversed(outcomes[-RECENT:])]
    except (OSError, sqlite3.Error) as exc:
        error = f"{type(exc).__name__}: {exc}"
    cores, picks = core_rows(jobs, _predictor(state_dir), outcomes)
    repos = repo_adapters(jobs, app_adapters, [r for r, _ in reports])
    return LearnView(job_verdicts(jobs), counts, recent, rows, charts, cores, picks, active, repos,
                     worker_rows(reports), memory_error=error)
