"""Tests for the phase 7 commit builder: range formatting, changelog, commit message, PR summary."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from diffusellm.errors import RepositoryError
from diffusellm.pipeline.deliver.commit import (
    changed_line_ranges,
    changelog_entry,
    commit_message,
    format_changed_code,
    summary_markdown,
)
from diffusellm.pipeline.deliver.summary import unchecked_title, validation_table
from diffusellm.pipeline.spec import Spec, parse_spec
from diffusellm.pipeline.understand.style.profile import ChangelogInfo
from diffusellm.pipeline.validate.report import CheckResult, ValidationReport
from diffusellm.pipeline.workspace import Worktree, create_worktree, remove_worktree

PY = sys.executable
RENAME = {"op": "rename_symbol", "target": "pkg.core.greet", "new_name": "welcome"}
ADD = {"op": "add_parameter", "target": "pkg.core.greet", "name": "loud", "default": "False"}


def spec(title: str = "Rename greet to welcome", *ops: dict[str, Any], description: str = ""
         ) -> Spec:
    return parse_spec({"title": title, "description": description,
                       "operations": list(ops) or [RENAME]})


def git(repo: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    proc = subprocess.run(
        ["git", "-c", "user.name=T", "-c", "user.email=t@example.com", *args], cwd=repo,
        env={**env, "GIT_CONFIG_NOSYSTEM": "1"}, capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def repo_with(tmp_path: Path, files: dict[str, str]) -> tuple[Path, Worktree]:
    """A committed repository holding `files`, and a worktree of it at HEAD."""
    repo = tmp_path / "repo"
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text, encoding="utf-8")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "init")
    return repo, create_worktree(repo, git(repo, "rev-parse", "HEAD"), tmp_path / "state", "wt")


def test_changed_line_ranges(tmp_path: Path) -> None:
    lines = [f"l{i}" for i in range(1, 11)]
    _, wt = repo_with(tmp_path, {"core.py": "\n".join(lines) + "\n", "gone.py": "x\n",
                                 "shrink.py": "a\nb\nc\n"})
    new = lines[:2] + ["L3"] + lines[3:6] + ["n1", "n2"] + lines[6:8] + lines[9:]
    (wt.path / "core.py").write_text("\n".join(new) + "\n")
    (wt.path / "gone.py").unlink()
    (wt.path / "shrink.py").write_text("a\nc\n")
    (wt.path / "pkg").mkdir()
    (wt.path / "pkg/new file.py").write_text("a = 1\nb = 2\n")
    (wt.path / "blob.bin").write_bytes(b"\0\1\2")
    assert changed_line_ranges(wt) == {"core.py": [(3, 3), (7, 8)], "pkg/new file.py": [(1, 2)]}
    remove_worktree(wt)


UGLY = "def untouched( a,b ):\n    return a+b\n\n\ndef changed( x ):\n    return x*2\n"


def test_format_changed_code_formats_only_changed_range(tmp_path: Path) -> None:
    _, wt = repo_with(tmp_path, {"pkg/mod.py": UGLY, "notes.txt": "x=1\n"})
    edited = UGLY.replace("changed( x ):\n    return x*2", "changed( x,y ):\n    return x*y")
    (wt.path / "pkg/mod.py").write_text(edited)
    (wt.path / "notes.txt").write_text("y=2\n")
    ranges = changed_line_ranges(wt)
    assert ranges["pkg/mod.py"] == [(5, 6)]
    assert format_changed_code(wt.path, ranges, None, PY) == ["pkg/mod.py"]
    assert (wt.path / "pkg/mod.py").read_text() == (
        "def untouched( a,b ):\n    return a+b\n\n\ndef changed(x, y):\n    return x * y\n")
    assert (wt.path / "notes.txt").read_text() == "y=2\n"
    assert not (wt.path / ".ruff_cache").exists()
    assert format_changed_code(wt.path, changed_line_ranges(wt), None, PY) == []
    remove_worktree(wt)


def test_format_changed_code_goes_bottom_up_over_several_ranges(tmp_path: Path) -> None:
    source = "a=1\nz=2\nb=3\n"
    _, wt = repo_with(tmp_path, {"m.py": source})
    long_call = "a=f(" + ", ".join(f"argument_{i}" for i in range(12)) + ")"
    (wt.path / "m.py").write_text(f"{long_call}\nz=2\nb=[3 ]\n")
    assert format_changed_code(wt.path, changed_line_ranges(wt), None, PY) == ["m.py"]
    text = (wt.path / "m.py").read_text()
    assert text.startswith("a = f(\n    argument_0,\n")
    assert text.endswith(")\nz=2\nb = [3]\n")
    remove_worktree(wt)


def test_format_changed_code_uses_repo_ruff_config_over_fallback(tmp_path: Path) -> None:
    config = "[format]\nquote-style = 'single'\n"
    _, wt = repo_with(tmp_path, {"ruff.toml": config, "m.py": "a=1\n"})
    fallback = tmp_path / "fallback.toml"
    fallback.write_text("[format]\nquote-style = 'double'\n")
    (wt.path / "m.py").write_text('a=1\ns = "text"\n')
    format_changed_code(wt.path, {"m.py": [(2, 2)]}, fallback, PY)
    assert (wt.path / "m.py").read_text() == "a=1\ns = 'text'\n"
    remove_worktree(wt)


def test_format_changed_code_uses_fallback_without_repo_config(tmp_path: Path) -> None:
    _, wt = repo_with(tmp_path, {"m.py": "a=1\n"})
    fallback = tmp_path / "fallback.toml"
    fallback.write_text("line-length = 30\n")
    (wt.path / "m.py").write_text("a=1\nvalue = compute(first_arg, second_arg)\n")
    format_changed_code(wt.path, {"m.py": [(2, 2)]}, fallback, PY)
    assert (wt.path / "m.py").read_text() == "a=1\nvalue = compute(\n    first_arg, second_arg\n)\n"
    remove_worktree(wt)


def test_format_changed_code_follows_black_settings(tmp_path: Path) -> None:
    black = "[tool.black]\nline-length = 30\nskip-string-normalization = true\n"
    _, wt = repo_with(tmp_path, {"pyproject.toml": black, "m.py": "a=1\n"})
    (wt.path / "m.py").write_text("a=1\nvalue = compute('first', second_arg)\n")
    format_changed_code(wt.path, {"m.py": [(2, 2)]}, None, PY)
    assert (wt.path / "m.py").read_text() == "a=1\nvalue = compute(\n    'first', second_arg\n)\n"
    remove_worktree(wt)


def test_format_changed_code_respects_repo_excludes(tmp_path: Path) -> None:
    config = "extend-exclude = ['generated.py']\n"
    _, wt = repo_with(tmp_path, {"ruff.toml": config, "generated.py": "a=1\n", "m.py": "b=1\n"})
    (wt.path / "generated.py").write_text("a=2\n")
    (wt.path / "m.py").write_text("b=2\n")
    assert format_changed_code(wt.path, changed_line_ranges(wt), None, PY) == ["m.py"]
    assert (wt.path / "generated.py").read_text() == "a=2\n"
    remove_worktree(wt)


def test_format_changed_code_skips_unparsable_file(tmp_path: Path) -> None:
    _, wt = repo_with(tmp_path, {"bad.py": "a=1\n", "good.py": "b=1\n"})
    (wt.path / "bad.py").write_text("a=(1,\n")
    (wt.path / "good.py").write_text("b=2\n")
    assert format_changed_code(wt.path, changed_line_ranges(wt), None, PY) == ["good.py"]
    assert (wt.path / "bad.py").read_text() == "a=(1,\n"
    remove_worktree(wt)


KAC = """# Changelog

All notable changes.

## [Unreleased]

### Added

* Something new

### Changed

* Old change
  continued

## [1.0.0] - 2024-01-01

### Added

* First
"""


def kac_entry(tmp_path: Path, text: str | None, **kwargs: Any) -> str:
    root = tmp_path / "wt"
    root.mkdir(exist_ok=True)
    if text is not None:
        (root / "CHANGELOG.md").write_bytes(text.encode())
    info = ChangelogInfo(format="keepachangelog", path="CHANGELOG.md", **kwargs)
    assert changelog_entry(info, spec(), root, issue_number=7) == "CHANGELOG.md"
    return (root / "CHANGELOG.md").read_bytes().decode()


def test_keepachangelog_appends_to_existing_changed(tmp_path: Path) -> None:
    expected = KAC.replace("  continued\n", "  continued\n* Rename greet to welcome (#7)\n")
    assert kac_entry(tmp_path, KAC) == expected


def test_keepachangelog_creates_changed_before_later_subsections(tmp_path: Path) -> None:
    text = KAC.replace("### Changed\n\n* Old change\n  continued\n", "### Fixed\n\n* A bug\n")
    expected = text.replace(
        "### Fixed\n", "### Changed\n\n* Rename greet to welcome (#7)\n\n### Fixed\n")
    assert kac_entry(tmp_path, text) == expected


def test_keepachangelog_creates_changed_at_section_end(tmp_path: Path) -> None:
    text = KAC.replace("### Changed\n\n* Old change\n  continued\n\n", "")
    expected = text.replace(
        "* Something new\n", "* Something new\n\n### Changed\n\n* Rename greet to welcome (#7)\n")
    assert kac_entry(tmp_path, text) == expected


def test_keepachangelog_creates_unreleased_section(tmp_path: Path) -> None:
    text = KAC.split("## [Unreleased]")[0] + "## [1.0.0]\n\n- First\n"
    new = "## [Unreleased]\n\n### Changed\n\n- Rename greet to welcome (#7)\n\n"
    expected = text.replace("## [1.0.0]", new + "## [1.0.0]")
    assert kac_entry(tmp_path, text) == expected


def test_keepachangelog_uses_profiled_heading_and_keeps_crlf(tmp_path: Path) -> None:
    text = "# Log\r\n\r\n## Next release\r\n\r\n## 1.0\r\n\r\n- First\r\n"
    result = kac_entry(tmp_path, text, unreleased_heading="## Next release")
    assert result == ("# Log\r\n\r\n## Next release\r\n\r\n### Changed\r\n\r\n"
                      "- Rename greet to welcome (#7)\r\n\r\n## 1.0\r\n\r\n- First\r\n")


def test_keepachangelog_creates_missing_file(tmp_path: Path) -> None:
    assert kac_entry(tmp_path, None) == (
        "# Changelog\n\n## [Unreleased]\n\n### Changed\n\n- Rename greet to welcome (#7)\n")


def towncrier(tmp_path: Path, the_spec: Spec, types: list[str], **kwargs: Any) -> str | None:
    info = ChangelogInfo(format="towncrier", path="changes", fragment_types=types)
    return changelog_entry(info, the_spec, tmp_path, **kwargs)


def test_towncrier_fragment_for_issue_and_type(tmp_path: Path) -> None:
    types = ["feature", "bugfix", "misc"]
    path = towncrier(tmp_path, spec("Add loud flag", ADD), types, issue_number=12)
    assert path == "changes/12.feature.md"
    assert (tmp_path / path).read_text() == "Add loud flag.\n"
    assert towncrier(tmp_path, spec(), types, issue_number=12) == "changes/12.misc.md"
    again = towncrier(tmp_path, spec("Add it", ADD), types, issue_number=12)
    assert again == "changes/12.feature.1.md"
    assert towncrier(tmp_path, spec(), ["added", "changed", "fixed"], issue_number=3) == (
        "changes/3.changed.md")


def test_towncrier_orphan_fragment_and_extension_convention(tmp_path: Path) -> None:
    (tmp_path / "changes").mkdir()
    (tmp_path / "changes" / "3.bugfix.rst").write_text("Fixed.\n")
    (tmp_path / "changes" / "template.jinja").write_text("")
    path = towncrier(tmp_path, spec(), ["feature", "bugfix", "misc"])
    assert path == "changes/+rename-greet-to-welcome.misc.rst"
    other = tmp_path / "other"
    (other / "changes").mkdir(parents=True)
    (other / "changes" / "4.misc").write_text("x\n")
    assert towncrier(other, spec(), ["misc"], job_id="job-42") == (
        "changes/+rename-greet-to-welcome-job-42.misc")


def test_changelog_none_writes_nothing(tmp_path: Path) -> None:
    assert changelog_entry(ChangelogInfo(), spec(), tmp_path, issue_number=1) is None
    assert list(tmp_path.iterdir()) == []


def test_changelog_path_outside_repository_is_refused(tmp_path: Path) -> None:
    info = ChangelogInfo(format="keepachangelog", path="../CHANGELOG.md")
    with pytest.raises(RepositoryError):
        changelog_entry(info, spec(), tmp_path / "wt")
    assert not (tmp_path / "CHANGELOG.md").exists()


SCOPED = ["feat(core): add greeting", "fix(api): handle none", "docs: readme"]


@pytest.mark.parametrize(
    ("convention", "examples", "subject"),
    [
        ("conventional", SCOPED, "refactor(core): rename greet to welcome"),
        ("conventional", ["feat(web): x", "fix(db): y"], "refactor(pkg): rename greet to welcome"),
        ("conventional", ["feat: add greeting", "fix: y"], "refactor: rename greet to welcome"),
        ("gitmoji", ["✨ Add x", "🐛 Fix y"], "\u267b\ufe0f Rename greet to welcome"),
        ("gitmoji", [":sparkles: Add x", ":bug: Fix y"], ":recycle: Rename greet to welcome"),
        ("bracketed", ["[core] Add x"], "[core] Rename greet to welcome"),
        ("imperative", [], "Rename greet to welcome"),
        ("none", [], "Rename greet to welcome"),
    ],
)
def test_commit_message_subject_per_convention(
    convention: Any, examples: list[str], subject: str
) -> None:
    message = commit_message(convention, spec("Renamed greet to welcome."), examples)
    lines = message.rstrip("\n").split("\n")
    assert lines[0] == subject
    assert lines[1] == ""
    assert lines[2] == "- Rename `pkg.core.greet` to `welcome`"
    assert lines[-1] == "Generated-by: diffusellm"


def test_commit_message_body_lists_every_operation() -> None:
    message = commit_message("imperative", spec("Rework greet", RENAME, ADD), [])
    assert message.split("\n")[2:4] == [
        "- Rename `pkg.core.greet` to `welcome`",
        "- Add keyword-only parameter `loud = False` to `pkg.core.greet`",
    ]


def test_commit_message_subject_is_short_and_not_doubled() -> None:
    title = "Renaming the greeting helper " + "and all of its many callers " * 5
    subject = commit_message("conventional", spec(title), SCOPED).split("\n")[0]
    assert len(subject) <= 72
    assert subject.startswith("refactor(core): rename the greeting helper and all")
    assert not subject.endswith(" ")
    again = commit_message("conventional", spec("refactor: Rename API client"), []).split("\n")[0]
    assert again == "refactor: rename API client"


def report() -> ValidationReport:
    return ValidationReport(checks=[
        CheckResult(name="ruff", command=["ruff", "check", "pkg/core.py"], passed=True,
                    scope="1 changed file"),
        CheckResult(name="pytest", command=["pytest", "-q", "tests/test_core.py"], passed=False,
                    tests_run=2, new_failures=["tests/test_core.py::test_a | boom",
                                  "tests/test_core.py::test_b"]),
        CheckResult(name="pyright", command=[], passed=True, skipped_reason="no config"),
    ])


def test_a_check_that_did_not_run_is_never_called_passed() -> None:
    not_run = CheckResult(name="pytest", command=["pytest"], state="not_run",
                          skipped_reason="pytest is not available to /venv/bin/python")
    required = ValidationReport(checks=[not_run], required=["pytest"])
    text = validation_table(required)
    assert not required.passed and required.missing == [
        "pytest: pytest is not available to /venv/bin/python"]
    assert text.startswith("**Not validated: required checks did not run** (pytest: ")
    assert "| ⚠️ not run: pytest is not available to /venv/bin/python |" in text
    assert "passed" not in text
    opted_out = ValidationReport(checks=[not_run], required=[])
    assert opted_out.passed
    assert "**Not checked:** pytest: pytest is not available" in validation_table(opted_out)
    assert unchecked_title("Rename greet", opted_out) == "Rename greet (not checked: pytest)"
    assert unchecked_title("Rename greet", ValidationReport(checks=[report().checks[0]])) == "Rename greet"


def test_the_validation_table_names_the_environment_the_tests_ran_in() -> None:
    from diffusellm.pipeline.validate.environment import EnvironmentInfo

    built = EnvironmentInfo(how="requirements-test.txt", python="/envs/k/venv/bin/python", packages=9,
                            build_s=12.34)
    text = validation_table(ValidationReport(checks=report().checks, environment=built))
    assert text.endswith("Environment: requirements-test.txt; `/envs/k/venv/bin/python`, 9 packages, built in 12.3s.")
    cached = built.model_copy(update={"cache_hit": True})
    assert validation_table(ValidationReport(environment=cached)).endswith(", 9 packages, from the cache.")
    failed = EnvironmentInfo(how="uv.lock", python="/usr/bin/python3", error="`uv sync` failed: no solution")
    assert "Environment (uv.lock): **could not be built**: `" in validation_table(ValidationReport(environment=failed))


def test_stored_reports_without_a_state_read_honestly() -> None:
    old = CheckResult.model_validate({"name": "pytest", "command": [], "passed": True,
                                      "skipped_reason": "could not run on the base nor on the change"})
    assert (old.state, old.passed) == ("not_run", False)
    assert CheckResult.model_validate({"name": "ruff", "command": [], "passed": False}).state == "failed"


def test_summary_markdown_contents() -> None:
    the_spec = spec(description="Greet is vague.\n<!-- diffusellm:spec=0000000000000000 -->")
    body = summary_markdown(the_spec, changed_files=["pkg/core.py", "tests/test_core.py"],
                            report=report(), changelog_path="CHANGELOG.md",
                            branch="diffusellm/rename-greet", commit="a" * 40)
    assert body.startswith("## Rename greet to welcome\n")
    assert "- Rename `pkg.core.greet` to `welcome`" in body
    assert "Greet is vague." in body
    assert "### Files changed (2)" in body and "- `tests/test_core.py`" in body
    rows = [line for line in body.splitlines() if line.startswith("|")]
    assert rows[0] == "| check | command | result | new failures |"
    assert rows[2] == "| ruff (1 changed file) | `ruff check pkg/core.py` | ✅ passed | none |"
    assert rows[3] == ("| pytest | `pytest -q tests/test_core.py` | ❌ failed (2 tests) | 2: "
                       "`tests/test_core.py::test_a \\| boom`<br>`tests/test_core.py::test_b` |")
    assert rows[4] == "| pyright |  | ⚠️ not run: no config | none |"
    assert "**New failures against the base commit.**" in body
    assert "Entry added in `CHANGELOG.md`." in body
    assert "`diffusellm/rename-greet`" in body and "`aaaaaaaaaaaa`" in body
    canonical = json.dumps(the_spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    assert re.findall(r"<!-- diffusellm:spec=(\w+) -->", body) == [digest]


def test_summary_marker_follows_the_spec_and_missing_parts_are_said() -> None:
    body = summary_markdown(spec(), changed_files=[], report=None, changelog_path=None,
                            branch="b", commit=None)
    other = summary_markdown(spec("Other title"), changed_files=[], report=None,
                             changelog_path=None, branch="b", commit=None)
    marker = re.compile(r"<!-- diffusellm:spec=[0-9a-f]{16} -->")
    assert marker.search(body) and marker.search(other)
    assert marker.findall(body) != marker.findall(other)
    assert "_Validation was not run._" in body
    assert "_No changelog entry" in body
    assert "_No description was given._" in body
