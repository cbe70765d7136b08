"""A clone with nothing beside it tests itself: no test reads outside the repository."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.openapi_check import SPEC_PATH
from tests.fakes.webhook_payloads import EXAMPLES

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
# Tests that need the GitHub double's OpenAPI file and the webhook examples, and nothing else heavy.
CLONE_TESTS = [
    "tests/app/test_webhooks.py::test_signed_delivery_is_accepted_recorded_and_routed",
    "tests/app/test_commands.py::test_installation_events_and_ping_queue_nothing",
    "tests/forge/test_github.py::test_issue_comments_and_reactions",
]
_OUTSIDE = re.compile(r"\.\./shared|/work/|(?<![\w.])shared/github|DIFFUSELLM_SHARED_DIR")


def _tracked(path: Path) -> bool:
    rel = path.relative_to(ROOT).as_posix()
    done = subprocess.run(["git", "ls-files", "--error-unmatch", rel], cwd=ROOT, capture_output=True)
    return done.returncode == 0


def _parents_index(node: ast.AST) -> int | None:
    """N in `Path(__file__)....parents[N]`, else None."""
    if (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute)
            and node.value.attr == "parents" and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, int) and "__file__" in ast.unparse(node.value)):
        return node.slice.value
    return None


def test_no_test_file_names_a_path_outside_the_repository() -> None:
    problems: list[str] = []
    for path in sorted(TESTS.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(ROOT)
        problems += [f"{rel}: names {m.group(0)!r}" for m in _OUTSIDE.finditer(text) if path != Path(__file__)]
        depth = len(rel.parts) - 1  # parents[depth] is the repository root
        for node in ast.walk(ast.parse(text)):
            index = _parents_index(node)
            if isinstance(node, ast.expr) and index is not None and index > depth:
                problems.append(f"{rel}:{node.lineno}: parents[{index}] climbs above the repository")
    assert problems == []


def test_the_github_data_the_fakes_read_is_committed() -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    files = [SPEC_PATH, *sorted(EXAMPLES.rglob("*.json"))]
    assert len(files) >= 9
    assert [f for f in files if not _tracked(f)] == []
    assert _tracked(ROOT / "scripts/regen_github_data.py") and _tracked(ROOT / "tests/data/github/README.md")


def test_a_fresh_clone_with_nothing_beside_it_runs_the_github_double_tests(tmp_path: Path) -> None:
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(clone)], check=True)
    assert not (tmp_path / "shared").exists()
    env = {k: v for k, v in os.environ.items() if k != "DIFFUSELLM_SHARED_DIR"}
    env["PYTHONPATH"] = str(clone)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *CLONE_TESTS],
        cwd=clone, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert f"{len(CLONE_TESTS)} passed" in done.stdout
