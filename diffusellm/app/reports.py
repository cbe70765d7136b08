"""Workers' learning reports (adapters, active adapters, remembered runs), kept in the app's state folder
for the training page; one file per worker, the latest report wins."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path

import structlog
from pydantic import ValidationError

from diffusellm.jobs.wire import LearningReport

log = structlog.get_logger(__name__)
MAX_REPORTS = 200


def reports_dir(state_dir: Path) -> Path:
    """Where an app keeps its workers' reports."""
    return state_dir / "learn" / "workers"


def save_report(folder: Path, report: LearningReport) -> Path:
    """Write `report` as its worker's file (atomically: a reader never sees half of it)."""
    folder.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256(report.worker_id.encode("utf-8")).hexdigest()[:24]
    path = folder / f"{name}.json"
    temporary = folder / f".{name}.{os.getpid()}.tmp"
    temporary.write_text(report.model_dump_json(), encoding="utf-8")
    temporary.replace(path)
    return path


def load_reports(folder: Path) -> list[tuple[LearningReport, str]]:
    """Every worker's latest report and when it arrived (UTC); unreadable files are skipped and logged."""
    found: list[tuple[LearningReport, str]] = []
    for path in sorted(folder.glob("*.json"))[:MAX_REPORTS]:
        try:
            report = LearningReport.model_validate_json(path.read_bytes())
            stamp = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
        except (OSError, ValidationError) as exc:
            log.warning("learn.report_unreadable", path=str(path), error=str(exc))
            continue
        found.append((report, stamp.strftime("%Y-%m-%d %H:%M UTC")))
    return found
