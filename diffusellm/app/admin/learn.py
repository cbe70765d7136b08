"""Admin pages, learning loop: verdicts on the bot's pull requests, the outcome memory of this
app's state folder (its in-process worker's runs), and the LoRA adapters trained there."""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diffusellm.jobs.model import JobState, JobStore
from diffusellm.learn.commands import adapters
from diffusellm.learn.outcomes import OutcomeStore

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


@dataclass(frozen=True)
class LearnView:
    """What the learning page shows."""

    verdicts: dict[str, int]
    """Succeeded jobs among the latest ones, by verdict (`open` while the pull request is)."""
    outcomes: dict[str, int]
    recent: list[dict[str, Any]]
    adapters: list[AdapterRow]
    memory_error: str = ""


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _adapter_row(data: dict[str, Any]) -> AdapterRow:
    first, last = data.get("first_loss"), data.get("last_loss")
    loss = f"{first:.3f} → {last:.3f}" if isinstance(first, float) and isinstance(last, float) else ""
    return AdapterRow(
        folder=_text(data.get("adapter")),
        date=_text(data.get("date")),
        base_model=_text(data.get("base_model")),
        examples=_text(data.get("examples")),
        steps=_text(data.get("steps")),
        loss=loss,
        seconds=_text(data.get("seconds")),
    )


def job_verdicts(store: JobStore) -> dict[str, int]:
    """Succeeded jobs with a pull request among the latest ones: accepted, rejected, or still open."""
    jobs = store.list_jobs(limit=SCANNED_JOBS, state=JobState.SUCCEEDED)
    with_pr = [j for j in jobs if isinstance(j.result.get("pr_number"), int)]
    counted = Counter(str(j.result.get("verdict") or "open") for j in with_pr)
    return {key: counted.get(key, 0) for key in ("accepted", "rejected", "open")}


def learn_view(store: JobStore, state_dir: Path) -> LearnView:
    """The learning page's data; an unreadable outcome memory is shown, not raised."""
    rows = [_adapter_row(a) for a in adapters(state_dir)]
    try:
        memory = OutcomeStore.in_state(state_dir)
        latest = memory.outcomes()[-RECENT:]
        recent = [
            {"job": o.job_id, "repo": o.repo, "title": o.title, "status": o.status, "verdict": o.verdict,
             "when": o.created_at}
            for o in reversed(latest)
        ]
        return LearnView(job_verdicts(store), memory.counts(), recent, rows)
    except (OSError, sqlite3.Error) as exc:
        return LearnView(job_verdicts(store), {}, [], rows, memory_error=f"{type(exc).__name__}: {exc}")
