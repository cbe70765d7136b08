"""`diffusellm demo`: the shipped example project in a fresh git repository, run through the whole pipeline."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from diffusellm.config import Settings
from diffusellm.errors import InputError
from diffusellm.pipeline.workspace import run_git

EXAMPLE_PROJECT = "taskboard"
EXAMPLE_SPEC = "rename_verbose.yaml"
_HISTORY = (
    ("src", "Add the taskboard package"),
    ("tests", "Add tests for boards, storage and the CLI"),
    (".", "Add changelog and project metadata"),
)


def examples_dir() -> Path:
    """The `examples/` folder of this source tree."""
    folder = Path(__file__).resolve().parents[2] / "examples"
    if not (folder / EXAMPLE_PROJECT).is_dir():
        raise InputError(
            f"the example project is missing: {folder / EXAMPLE_PROJECT}",
            hint="run the demo from a clone of the diffusellm repository (make demo)",
        )
    return folder


_IDENTITY = {
    "GIT_AUTHOR_NAME": "Demo Author",
    "GIT_AUTHOR_EMAIL": "demo@example.invalid",
    "GIT_COMMITTER_NAME": "Demo Author",
    "GIT_COMMITTER_EMAIL": "demo@example.invalid",
}


def _git(repo: Path, *args: str) -> None:
    run_git(args, repo, env=_IDENTITY)


def make_demo_repository(dest_parent: Path) -> Path:
    """Copy the example project into a new git repository with a short history; return its path."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S-%f")
    repo = dest_parent / f"{EXAMPLE_PROJECT}-{stamp}"
    shutil.copytree(
        examples_dir() / EXAMPLE_PROJECT,
        repo,
        ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache", ".ruff_cache"),
    )
    _git(repo, "init", "-q", "-b", "main")
    for folder, message in _HISTORY:
        _git(repo, "add", "-A", "--", folder)
        _git(repo, "commit", "-q", "-m", message)
    return repo


def run_demo(settings: Settings, phase: Callable[[str], None]) -> dict[str, Any]:
    """Build the demo repository and run the example spec on it; return the run report data."""
    from diffusellm.cli.report import run_job

    phase("creating the demo repository from examples/")
    parent = settings.state_path() / "demo"
    parent.mkdir(parents=True, exist_ok=True)
    repo = make_demo_repository(parent)
    result = run_job(settings, examples_dir() / "specs" / EXAMPLE_SPEC, repo, None, phase)
    result["repo"] = str(repo)
    return result
