"""Admin pages, learning loop in numbers: the series the training page's charts draw, from the job
store (every worker's runs) and the training records of the app's state folder."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from diffusellm.jobs.model import Job

VERDICTS = ("accepted", "rejected", "open")
CORES = ("diffusion", "llm")
MAX_CURVE_POINTS = 2000


def _day(moment: dt.datetime) -> int:
    """Midnight UTC of `moment`'s day, in Unix seconds (the charts' time axis)."""
    utc = moment.astimezone(dt.UTC)
    return int(dt.datetime(utc.year, utc.month, utc.day, tzinfo=dt.UTC).timestamp())


def cumulative(points: Iterable[tuple[int, str]], keys: Sequence[str]) -> dict[str, list[int]]:
    """`(day, key)` events as running totals per key on every day that has one: {"x": days, key: totals}."""
    per_day: dict[int, Counter[str]] = {}
    for day, key in points:
        per_day.setdefault(day, Counter())[key] += 1
    totals = Counter[str]()
    series: dict[str, list[int]] = {"x": [], **{k: [] for k in keys}}
    for day in sorted(per_day):
        totals.update(per_day[day])
        series["x"].append(day)
        for key in keys:
            series[key].append(totals[key])
    return series


def pr_verdict(job: Job) -> str | None:
    """accepted, rejected or open for a job that opened a pull request; None for the others."""
    if not isinstance(job.result.get("pr_number"), int):
        return None
    verdict = job.result.get("verdict")
    return verdict if verdict in ("accepted", "rejected") else "open"


def run_core(job: Job) -> tuple[str, bool] | None:
    """(core, validated) of a job whose code a model core wrote, from the run report it stored."""
    raw = job.result.get("report")
    report: dict[str, Any] = raw if isinstance(raw, dict) else {}  # pyright: ignore[reportUnknownVariableType]
    core = report.get("core")
    if core not in CORES:
        return None
    return str(core), report.get("status") == "succeeded"


def pr_series(jobs: Sequence[Job]) -> dict[str, list[int]]:
    """Pull requests opened so far by day, split by what became of them."""
    points = [(_day(j.created_at), v) for j in jobs if (v := pr_verdict(j)) is not None]
    return cumulative(points, VERDICTS)


def core_series(jobs: Sequence[Job]) -> dict[str, list[int]]:
    """Runs each core wrote so far, by day: which core gets picked, over time."""
    points = [(_day(j.created_at), c[0]) for j in jobs if (c := run_core(j)) is not None]
    return cumulative(points, CORES)


@dataclass(frozen=True)
class CoreTally:
    """Runs a core wrote among the scanned jobs and how many validated."""

    core: str
    runs: int
    validated: int

    @property
    def rate(self) -> str:
        """The share that validated, as a percentage ("" without runs)."""
        return f"{100 * self.validated / self.runs:.0f}%" if self.runs else ""


def core_tallies(jobs: Sequence[Job]) -> list[CoreTally]:
    """Per core: runs and validated runs."""
    found = [c for j in jobs if (c := run_core(j)) is not None]
    return [CoreTally(core, sum(1 for c, _ in found if c == core), sum(1 for c, ok in found if c == core and ok))
            for core in CORES]


def loss_series(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The recorded per-step losses of each adapter, on one step axis (shorter runs end early)."""
    curves = [(str(r.get("label", "")), _losses(r)) for r in records]
    curves = [(label, values) for label, values in curves if values]
    steps = max((len(v) for _, v in curves), default=0)
    return {
        "x": list(range(1, steps + 1)),
        "series": [{"label": label, "values": values + [None] * (steps - len(values))} for label, values in curves],
    }


def _losses(record: dict[str, Any]) -> list[float | None]:
    raw = record.get("losses")
    if not isinstance(raw, list):
        return []
    values: list[float | None] = [float(v) if isinstance(v, int | float) else None for v in raw[:MAX_CURVE_POINTS]]  # pyright: ignore[reportUnknownVariableType]
    return values
