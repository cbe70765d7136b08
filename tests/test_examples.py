"""The shipped example project stays healthy: its tests, ruff and pyright pass, so the demo starts green."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "taskboard"


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": "src", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300
    )


def test_example_project_checks_pass(tmp_path: Path) -> None:
    copy = tmp_path / "taskboard"
    shutil.copytree(EXAMPLE, copy)
    tests = _run(copy, "pytest", "-q", "-p", "no:cacheprovider")
    assert tests.returncode == 0, tests.stdout[-2000:]
    lint = _run(copy, "ruff", "check", "--no-cache", "src", "tests")
    assert lint.returncode == 0, lint.stdout
    types = _run(copy, "pyright", "src")
    assert types.returncode == 0, types.stdout[-2000:]
