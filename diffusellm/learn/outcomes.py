"""Phase 8, outcome memory: what each run did (spec, operations, generated code, validation) and the
verdict it later got (accepted when its branch was merged, rejected when a person turned it down),
kept in the state folder's `learn/outcomes.sqlite`."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Generator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from diffusellm.errors import InputError
from diffusellm.pipeline.job import RunReport
from diffusellm.pipeline.spec import GenerativeOperation, Operation

Verdict = Literal["pending", "accepted", "rejected", "none"]
"""`none`: the run left no branch, so there is nothing to accept."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outcomes (
    job_id TEXT PRIMARY KEY,
    repo TEXT NOT NULL,
    created_at TEXT NOT NULL,
    status TEXT NOT NULL,
    branch TEXT,
    commit_sha TEXT,
    base_commit TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    operations TEXT NOT NULL,
    changed_files TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    verdict TEXT NOT NULL,
    verdict_source TEXT,
    verdict_at TEXT,
    forge_job TEXT,
    core TEXT
)
"""
_COLUMNS = (
    "job_id, repo, created_at, status, branch, commit_sha, base_commit, title, description, operations, "
    "changed_files, attempts, verdict, verdict_source, verdict_at, forge_job, core"
)


@dataclass(frozen=True)
class Outcome:
    """One run as the learning loop sees it."""

    job_id: str
    repo: str
    created_at: str
    status: str
    branch: str | None
    commit: str | None
    base_commit: str
    title: str
    description: str
    operations: list[dict[str, Any]]
    """The operations of the change as applied (generated ones with their code)."""
    changed_files: list[str]
    attempts: int
    verdict: Verdict
    verdict_source: str | None
    verdict_at: str | None
    forge_job: str | None = None
    """The app's job id when the run was a GitHub job (its verdict comes from the app)."""
    core: str | None = None
    """The model core that wrote the generated code (`diffusion` or `llm`), if any."""

    def generated(self) -> list[dict[str, Any]]:
        """The operations whose code a model wrote (edit_function, add_function, add_test)."""
        return [op for op in self.operations if op.get("op") in ("edit_function", "add_function", "add_test")]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _operations(report: RunReport) -> list[Operation]:
    if report.plan is not None:
        return list(report.plan.operations)
    return list(report.spec.operations) if report.spec is not None else []


def _op_data(op: Operation) -> dict[str, Any]:
    data = op.model_dump(mode="json", exclude_none=True)
    if isinstance(op, GenerativeOperation):
        data.pop("body", None)  # `source` holds the whole function; the body alone repeats it
    return data


def _row(row: tuple[Any, ...]) -> Outcome:
    values = list(row)
    values[9] = json.loads(values[9])
    values[10] = json.loads(values[10])
    return Outcome(*values)


class OutcomeStore:
    """The outcome memory of one state folder (SQLite; one writer at a time)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.execute(_SCHEMA)

    @classmethod
    def in_state(cls, state_dir: Path) -> OutcomeStore:
        """The store of a state folder."""
        return cls(state_dir / "learn" / "outcomes.sqlite")

    @contextmanager
    def _connect(self) -> Generator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            with conn:
                yield conn
        finally:
            conn.close()

    def record(self, report: RunReport, *, forge_job: str | None = None, branch: str | None = None) -> Outcome:
        """Remember a finished run; a run that left a branch waits for its verdict. A GitHub job passes
        the app's job id and the branch it pushed (the run's own branch is local and deleted)."""
        spec = report.spec
        branch = branch or report.branch
        values = (
            report.job_id,
            report.repo,
            _now(),
            report.status,
            branch,
            report.commit,
            report.base_commit,
            spec.title if spec else "",
            spec.description if spec else "",
            json.dumps([_op_data(op) for op in _operations(report)]),
            json.dumps(report.changed_files),
            len(report.attempts),
            "pending" if branch else "none",
            None,
            None,
            forge_job,
            report.core,
        )
        with self._connect() as conn:
            conn.execute(f"INSERT OR REPLACE INTO outcomes ({_COLUMNS}) VALUES ({','.join('?' * 17)})", values)
        return self.get(report.job_id)

    def get(self, key: str) -> Outcome:
        """The outcome of a job id or branch name; an unknown one is an InputError."""
        with self._connect() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM outcomes WHERE job_id = ? OR branch = ? ORDER BY created_at DESC",
                (key, key),
            ).fetchone()
        if row is None:
            raise InputError(
                f"no recorded run has job id or branch {key!r}",
                hint="`diffusellm learn status` lists the recorded runs",
            )
        return _row(row)

    def set_verdict(self, key: str, verdict: Literal["accepted", "rejected"], source: str) -> Outcome:
        """Record that a person accepted or rejected the change of a job id or branch."""
        found = self.get(key)
        if found.verdict == "none":
            raise InputError(
                f"run {found.job_id} left no branch ({found.status}), so there is nothing to {verdict[:-2]}",
                hint="only runs that produced a branch can be accepted or rejected",
            )
        with self._connect() as conn:
            conn.execute(
                "UPDATE outcomes SET verdict = ?, verdict_source = ?, verdict_at = ? WHERE job_id = ?",
                (verdict, source, _now(), found.job_id),
            )
        return self.get(found.job_id)

    def outcomes(self, *, repo: str | None = None, verdict: Verdict | None = None) -> list[Outcome]:
        """Recorded runs, oldest first, optionally of one repository or verdict."""
        query, args = f"SELECT {_COLUMNS} FROM outcomes WHERE 1=1", list[str]()
        if repo is not None:
            query, args = query + " AND repo = ?", [*args, repo]
        if verdict is not None:
            query, args = query + " AND verdict = ?", [*args, verdict]
        with self._connect() as conn:
            return [_row(r) for r in conn.execute(query + " ORDER BY created_at, job_id", args).fetchall()]

    def pending_forge_jobs(self) -> dict[str, str]:
        """App job id → outcome job id of the GitHub runs still waiting for a verdict."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT forge_job, job_id FROM outcomes WHERE verdict = 'pending' AND forge_job IS NOT NULL"
            ).fetchall()
        return {str(forge): str(job) for forge, job in rows}

    def counts(self) -> dict[str, int]:
        """How many runs have each verdict."""
        with self._connect() as conn:
            rows = conn.execute("SELECT verdict, COUNT(*) FROM outcomes GROUP BY verdict").fetchall()
        return {str(v): int(n) for v, n in rows}
