"""The demo's main job: the shipped plain-words issue, shown as the GitHub issue it would be, and the exit
code that needs both runs to leave a validated branch."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from diffusellm.cli.demo import EXAMPLE_ISSUE, demo_exit_code, examples_dir, github_issue, print_demo
from diffusellm.config import load_settings


def _run(status: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "status": status,
        "branch": "diffusellm/x" if status == "succeeded" else None,
        "commit": "0123456789abcdef",
        "changed_files": ["src/taskboard/models.py"],
        "validation": {"checks": [], "passed": status == "succeeded"},
        "summary_path": "/s/summary.md",
        "patch_path": "/s/change.patch",
        "spec": spec,
    }


def test_the_example_issue_is_shown_as_a_labelled_github_issue() -> None:
    settings = load_settings(None, ["github.trigger_label=bot-please"])
    shown = github_issue(examples_dir() / "issues" / EXAMPLE_ISSUE, settings)
    assert shown["labels"] == ["bot-please"] and shown["comment"] == "/diffusellm run"
    assert shown["title"] and not shown["title"].startswith("#")
    assert shown["body"] and shown["title"] not in shown["body"]


def test_the_demo_succeeds_only_when_both_runs_left_a_branch() -> None:
    issue = {"path": "p", "run": _run("succeeded"), "github": {}}
    assert demo_exit_code({**_run("succeeded"), "issue": issue}) == 0
    failed = {**issue, "run": _run("validation_failed")}
    assert demo_exit_code({**_run("succeeded"), "issue": failed}) == 1


def test_the_demo_prints_both_runs_and_the_issue() -> None:
    settings = load_settings(None, [])
    op = {"op": "add_parameter", "target": "taskboard.models.Board.pending", "name": "tag", "default": "None"}
    result = {
        **_run("succeeded"),
        "repo": "/demo/taskboard",
        "issue": {
            "path": "examples/issues/x.md",
            "run": _run("succeeded", {"title": "t", "operations": [op]}),
            "github": github_issue(examples_dir() / "issues" / EXAMPLE_ISSUE, settings),
        },
    }
    console = Console(record=True, width=200)
    print_demo(console, result)
    text = console.export_text()
    assert "1. A YAML spec" in text and "2. The main job: a plain-words issue" in text
    assert "read as: add_parameter taskboard.models.Board.pending (name='tag', default='None')" in text
    assert "3. The same request as a GitHub issue" in text and "label:  diffusellm" in text
