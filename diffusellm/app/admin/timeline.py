"""Admin pages, time: a job's phases with their durations, its elapsed time, and why a queued job waits."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from diffusellm.jobs.model import TERMINAL_STATES, Job, JobEvent, JobState

_ENDS = frozenset({"finished", "reaped", "cancelled"})


def duration(seconds: float) -> str:
    """`42 s`, `3 min 05 s`, `2 h 07 min`: short enough for a table cell."""
    whole = max(int(seconds), 0)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@dataclass(frozen=True)
class PhaseSpan:
    """One phase of one attempt: when it started and how long it took (or has taken, while open)."""

    attempt: int
    name: str
    started: dt.datetime
    seconds: float
    running: bool

    @property
    def took(self) -> str:
        """The duration as the page shows it."""
        return duration(self.seconds)


def phases(events: Sequence[JobEvent], now: dt.datetime) -> list[PhaseSpan]:
    """The phases the workers reported, each lasting until the next phase or the attempt's end."""
    spans: list[PhaseSpan] = []
    attempt, open_name, open_at = 0, "", now
    for event in events:
        if open_name and (event.kind == "phase" or event.kind in _ENDS or event.kind == "claimed"):
            seconds = (event.at - open_at).total_seconds()
            spans.append(PhaseSpan(attempt, open_name, open_at, seconds, running=False))
            open_name = ""
        if event.kind == "claimed":
            attempt += 1
        elif event.kind == "phase":
            open_name, open_at = event.message, event.at
    if open_name:
        spans.append(PhaseSpan(attempt, open_name, open_at, (now - open_at).total_seconds(), running=True))
    return spans


def current_phase(job: Job, events: Sequence[JobEvent]) -> str:
    """The phase a running job is in ("" before its first phase or when it is not running)."""
    if job.state is not JobState.RUNNING:
        return ""
    for event in reversed(events):
        if event.kind == "claimed":
            return "starting"
        if event.kind == "phase":
            return event.message
    return ""


def _last_claim(events: Sequence[JobEvent]) -> dt.datetime | None:
    return next((e.at for e in reversed(events) if e.kind == "claimed"), None)


def elapsed(job: Job, events: Sequence[JobEvent], now: dt.datetime) -> str:
    """Running: since its attempt started; queued or waiting: since it was created; ended: how long it
    took from being queued to its end."""
    if job.state is JobState.RUNNING:
        started = _last_claim(events) or job.updated_at
        return f"running {duration((now - started).total_seconds())}"
    if job.state in TERMINAL_STATES:
        return f"took {duration((job.updated_at - job.created_at).total_seconds())}"
    return f"waiting {duration((now - job.created_at).total_seconds())}"


def wait_reason(job: Job, running: Sequence[Job], queued: Sequence[Job], now: dt.datetime) -> str:
    """Why a queued or waiting job has not started; "" for the other states."""
    if job.state is JobState.WAITING_APPROVAL:
        return "waits for its plan to be approved"
    if job.state is not JobState.QUEUED:
        return ""
    if job.not_before is not None and job.not_before > now:
        after = duration((job.not_before - now).total_seconds())
        return f"backing off after a retryable failure: tried again in {after}"
    busy = next((j for j in running if j.repo_key == job.repo_key), None)
    if busy is not None:
        return f"waits behind job {busy.id[:12]}, running on this repository (one job per repository at a time)"
    ahead = [j for j in queued if j.repo_key == job.repo_key and (j.created_at, j.id) < (job.created_at, job.id)]
    if ahead:
        return f"waits behind {len(ahead)} older queued job(s) of this repository"
    return "next for this repository: waits for a free worker"
