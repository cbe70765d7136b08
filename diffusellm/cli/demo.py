"""`diffusellm demo`: the shipped example project in a fresh git repository, run through the whole pipeline:
first the YAML example spec, then the main job, a plain-words issue read and carried out by the embedded
model, and what the same request looks like as a labelled GitHub issue."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.text import Text

from diffusellm.config import Settings
from diffusellm.errors import InputError
from diffusellm.pipeline.workspace import run_git

EXAMPLE_PROJECT = "taskboard"
EXAMPLE_SPEC = "rename_verbose.yaml"
EXAMPLE_ISSUE = "find_by_slug.md"
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


def github_issue(issue: Path, settings: Settings) -> dict[str, Any]:
    """The same request as a GitHub issue: its first heading as the title, the rest as the body, and the
    label (or the comment) that hands it to the bot."""
    lines = issue.read_text(encoding="utf-8").strip().splitlines()
    title = lines[0].lstrip("#").strip() if lines and lines[0].startswith("#") else issue.stem
    body = "\n".join(lines[1:] if lines and lines[0].startswith("#") else lines).strip()
    return {
        "title": title,
        "body": body,
        "labels": [settings.github.trigger_label],
        "comment": f"{settings.github.command} run",
    }


def run_demo(settings: Settings, phase: Callable[[str], None]) -> dict[str, Any]:
    """Build the demo repository, run the example spec on it, then the plain-words example issue; return
    the spec run's report data with the issue run under `issue`."""
    from diffusellm.cli.report import run_job

    phase("creating the demo repository from examples/")
    parent = settings.state_path() / "demo"
    parent.mkdir(parents=True, exist_ok=True)
    repo = make_demo_repository(parent)
    result = run_job(settings, examples_dir() / "specs" / EXAMPLE_SPEC, repo, None, phase)
    result["repo"] = str(repo)
    issue = examples_dir() / "issues" / EXAMPLE_ISSUE
    phase(f"the main job: a plain-words issue, {issue.name}")
    issue_run = run_job(settings, issue, repo, None, phase)
    result["issue"] = {"path": str(issue), "run": issue_run, "github": github_issue(issue, settings)}
    return result


def demo_exit_code(result: dict[str, Any]) -> int:
    """0 when the spec and the issue both became validated branches, else 1."""
    runs = [result, result["issue"]["run"]]
    return 0 if all(run.get("status") == "succeeded" for run in runs) else 1


def print_demo(console: Console, result: dict[str, Any]) -> None:
    """Both runs in words, then the issue as it would be filed on GitHub."""
    from diffusellm.cli.report import print_run

    console.print(f"demo repository: [bold]{escape(result['repo'])}[/]", markup=True)
    console.print(f"\n[bold]1. A YAML spec[/] (examples/specs/{EXAMPLE_SPEC})", markup=True)
    print_run(console, result)
    issue: dict[str, Any] = result["issue"]
    run: dict[str, Any] = issue["run"]
    console.print(f"\n[bold]2. The main job: a plain-words issue[/] (examples/issues/{EXAMPLE_ISSUE})", markup=True)
    spec: dict[str, Any] = run.get("spec") or {}
    operations: list[dict[str, Any]] = spec.get("operations", [])
    for op in operations:
        values = ", ".join(f"{k}={v!r}" for k, v in op.items() if k not in ("op", "target") and v is not None)
        console.print(f"  read as: {escape(op['op'])} {escape(op['target'])} ({escape(values)})", markup=True)
    print_run(console, run)
    github: dict[str, Any] = issue["github"]
    text = (
        f"[bold]{escape(github['title'])}[/]   label: [reverse] {escape(github['labels'][0])} [/]\n\n"
        f"{escape(github['body'])}\n\n"
        f"[dim]Labelled (or with a `{escape(github['comment'])}` comment), the GitHub App queues the same job; "
        "a worker runs it as above and opens a draft pull request that links the issue.[/]"
    )
    console.print("\n[bold]3. The same request as a GitHub issue[/]", markup=True)
    console.print(Panel(Text.from_markup(text), title="issue", expand=False))
