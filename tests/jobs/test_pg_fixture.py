"""Without PostgreSQL the PostgreSQL tests fail under CI (and only skip on a developer's machine)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.jobs.conftest import ROOT

ONE_PG_TEST = "tests/jobs/test_store.py::test_delivery_replay_is_reported[postgresql]"


def _run_without_postgres(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "DIFFUSELLM_TEST_POSTGRES_URL")}
    env.update(PG_BIN=str(tmp_path / "no-postgres-here"), DIFFUSELLM_PG_DIR=str(tmp_path / "pg"))
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", ONE_PG_TEST],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize(("ci", "outcome", "code"), [("true", "1 error", 1),
                                                      (None, "1 skipped", 0)])
def test_missing_postgres(tmp_path: Path, ci: str | None, outcome: str, code: int) -> None:
    done = _run_without_postgres(tmp_path, ci)
    assert done.returncode == code, done.stdout
    assert outcome in done.stdout
    assert "PostgreSQL is needed for the job-store tests" in done.stdout
