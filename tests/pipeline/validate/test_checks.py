"""Tests for validation: real ruff, pyright and pytest in the real sandbox on small repositories."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from diffusellm.errors import ConfigError
from diffusellm.pipeline.validate.checks import validate_change
from diffusellm.pipeline.validate.findings import Finding, new_findings
from diffusellm.pipeline.validate.report import CheckResult, ValidationReport
from diffusellm.pipeline.validate.sandbox import BubblewrapSandbox
from diffusellm.pipeline.validate.settings import ValidationSettings

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is missing")

PYPROJECT = """\
[tool.ruff]
line-length = 100

[tool.ruff.lint]
select = ["E", "F"]

[tool.pytest.ini_options]
testpaths = ["tests"]
"""

CORE = """\
def add(a: int, b: int) -> int:
    return a + b
"""

TEST_CORE = """\
from pkg.core import add


def test_add() -> None:
    assert add(1, 2) == 3
"""

ONLY_PYTEST = ValidationSettings(ruff=False, pyright=False)


def write_tree(root: Path, files: Mapping[str, str | None]) -> Path:
    """Write (or, for None, delete) repository files under `root`."""
    for rel, text in files.items():
        path = root / rel
        if text is None:
            path.unlink(missing_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def make_repo(tmp_path: Path, extra: Mapping[str, str | None] | None = None) -> Path:
    """The base checkout: a package, its tests, a ruff and pytest config; committed with git."""
    root = write_tree(tmp_path / "base" / "proj", {
        "pyproject.toml": PYPROJECT, "pkg/__init__.py": "", "pkg/core.py": CORE,
        "tests/test_core.py": TEST_CORE, **(extra or {}),
    })
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com",
                    "commit", "-qm", "base"], cwd=root, check=True)
    return root


def make_head(base: Path, tmp_path: Path, edits: Mapping[str, str | None]) -> Path:
    """The change: a clone of the base commit with `edits` on top."""
    head = tmp_path / "head" / "proj"
    subprocess.run(["git", "clone", "-q", str(base), str(head)], check=True)
    return write_tree(head, edits)


def validate(
    base: Path,
    head: Path,
    changed: list[str],
    *,
    tests: list[str] | None = None,
    acceptance: list[str] | None = None,
    settings: ValidationSettings | None = None,
    ruff_config: Path | None = None,
) -> ValidationReport:
    return validate_change(
        base_dir=base, head_dir=head, changed_files=changed, tests=tests,
        acceptance_tests=acceptance or [], sandbox=BubblewrapSandbox(),
        settings=settings or ValidationSettings(), ruff_config=ruff_config,
    )


def check(report: ValidationReport, name: str) -> CheckResult:
    return next(c for c in report.checks if c.name == name)


def test_new_findings_count_repeated_keys() -> None:
    base = [Finding(("ruff", "a.py", "F401", "x"), "a.py:1: F401 x")]
    head = [Finding(("ruff", "a.py", "F401", "x"), "a.py:3: F401 x"),
            Finding(("ruff", "a.py", "F401", "x"), "a.py:9: F401 x")]
    assert new_findings(base, head) == ["a.py:9: F401 x"]
    assert new_findings(head, base) == []


def test_extra_pythonpath_must_stay_inside_the_repository() -> None:
    with pytest.raises(ValueError, match="inside the repository"):
        ValidationSettings(extra_pythonpath=["../elsewhere"])


def test_missing_ruff_config_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        validate(tmp_path, tmp_path, [], ruff_config=tmp_path / "nope.toml")


@needs_bwrap
@pytest.mark.timeout(300)
def test_unchanged_change_passes_every_check(tmp_path: Path) -> None:
    base = make_repo(tmp_path)
    head = make_head(base, tmp_path, {})
    report = validate(base, head, ["pkg/core.py"], acceptance=["tests/test_core.py::test_add"])
    assert report.passed, report.model_dump_json(indent=1)
    assert [c.name for c in report.checks] == ["ruff", "pyright", "pytest", "acceptance"]
    for result in report.checks:
        assert result.skipped_reason is None, result
        assert result.command[:2] == [sys.executable, "-m"]
        assert (result.base_failures, result.head_failures) == (0, 0)
    assert check(report, "pytest").scope == "whole suite"
    assert "1 passed" in check(report, "pytest").output_tail
    assert [check(report, n).tests_run for n in ("pytest", "acceptance")] == [1, 1]
    assert [c.state for c in report.checks] == ["passed"] * 4 and report.required == ["pytest"]


BROKEN_CORE = """\
import os


def add(a: int, b: int) -> int:
    total: int = "not a number"
    return a - b
"""


@needs_bwrap
@pytest.mark.timeout(300)
def test_new_ruff_pyright_and_test_failures_are_reported(tmp_path: Path) -> None:
    base = make_repo(tmp_path)
    head = make_head(base, tmp_path, {"pkg/core.py": BROKEN_CORE})
    report = validate(base, head, ["pkg/core.py"])
    assert not report.passed
    ruff, pyright, tests = check(report, "ruff"), check(report, "pyright"), check(report, "pytest")
    assert ruff.command[2:4] == ["ruff", "check"] and "pkg/core.py" in ruff.command
    assert "pkg/core.py:1: F401 `os` imported but unused" in ruff.new_failures
    assert any(f.startswith("pkg/core.py:5: F841") for f in ruff.new_failures)
    assert pyright.command[2] == "pyright"
    assert [f.split(" ")[:2] for f in pyright.new_failures] == [
        ["pkg/core.py:5:", "reportAssignmentType"]
    ]
    assert tests.command[2] == "pytest"
    assert tests.new_failures == ["tests/test_core.py::test_add - assert -1 == 3"]
    assert not (ruff.passed or pyright.passed or tests.passed)
    assert [c.state for c in report.checks] == ["failed"] * 3  # no acceptance tests: no such row


OLD_MESS = """\
import sys


def add(a: int, b: int) -> int:
    wrong: str = 1
    return a + b
"""

OLD_MESS_SHIFTED = """\
\"\"\"Arithmetic.\"\"\"
import sys


def double(a: int) -> int:
    return 2 * a


def add(a: int, b: int) -> int:
    wrong: str = 1
    return a + b
"""

BROKEN_TEST = """\
def test_broken() -> None:
    assert 1 == 2
"""


@needs_bwrap
@pytest.mark.timeout(300)
def test_failures_already_on_the_base_do_not_count(tmp_path: Path) -> None:
    base = make_repo(tmp_path, {"pkg/core.py": OLD_MESS, "tests/test_broken.py": BROKEN_TEST})
    head = make_head(base, tmp_path, {"pkg/core.py": OLD_MESS_SHIFTED})
    report = validate(base, head, ["pkg/core.py"])
    assert report.passed, report.model_dump_json(indent=1)
    for name in ("ruff", "pyright", "pytest"):
        result = check(report, name)
        assert result.new_failures == []
        assert result.base_failures >= 1 and result.head_failures == result.base_failures


@needs_bwrap
@pytest.mark.timeout(300)
def test_selected_tests_and_a_new_failing_test_file(tmp_path: Path) -> None:
    base = make_repo(tmp_path)
    new_test = "def test_new() -> None:\n    assert False, 'new test fails'\n"
    head = make_head(base, tmp_path, {"tests/test_new.py": new_test})
    selected = ["tests/test_new.py::test_new", "tests/test_core.py::test_add"]
    report = validate(base, head, ["tests/test_new.py"], tests=selected, settings=ONLY_PYTEST)
    result = check(report, "pytest")
    assert result.new_failures == [
        "tests/test_new.py::test_new - AssertionError: new test fails"
    ]
    assert result.scope.startswith("tests/test_new.py::test_new, tests/test_core.py::test_add")
    assert result.command[-2:] == selected


@needs_bwrap
@pytest.mark.timeout(300)
def test_hung_test_is_killed_by_the_per_test_timeout(tmp_path: Path) -> None:
    base = make_repo(tmp_path)
    hang = "import time\n\n\ndef test_hang() -> None:\n    time.sleep(600)\n"
    head = make_head(base, tmp_path, {"tests/test_hang.py": hang})
    settings = ValidationSettings(ruff=False, pyright=False, test_timeout_s=2)
    report = validate(base, head, ["tests/test_hang.py"], settings=settings)
    result = check(report, "pytest")
    assert "--timeout=2" in result.command
    assert len(result.new_failures) == 1
    assert result.new_failures[0].startswith("tests/test_hang.py::test_hang - ")
    assert "Timeout" in result.new_failures[0]


@pytest.fixture
def listener() -> Iterator[int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


@needs_bwrap
@pytest.mark.timeout(300)
def test_a_test_using_the_network_fails_in_the_sandbox(tmp_path: Path, listener: int) -> None:
    base = make_repo(tmp_path)
    net_test = (
        "import socket\n\n\ndef test_talks_to_host() -> None:\n"
        f"    socket.create_connection(('127.0.0.1', {listener}), timeout=5).close()\n"
    )
    head = make_head(base, tmp_path, {"tests/test_net.py": net_test})
    outside = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_net.py"],
        cwd=head, capture_output=True, text=True, check=False,
    )
    assert outside.returncode == 0, outside.stdout  # the test itself is fine on the host
    report = validate(base, head, ["tests/test_net.py"], settings=ONLY_PYTEST)
    result = check(report, "pytest")
    assert len(result.new_failures) == 1
    assert result.new_failures[0].startswith("tests/test_net.py::test_talks_to_host - ")
    assert "ConnectionRefusedError" in result.new_failures[0]


@needs_bwrap
@pytest.mark.timeout(300)
def test_acceptance_tests_must_pass_outright(tmp_path: Path) -> None:
    base = make_repo(tmp_path, {"tests/test_broken.py": BROKEN_TEST})
    head = make_head(base, tmp_path, {"pkg/core.py": CORE + "\n\ndef noop() -> None:\n    pass\n"})
    report = validate(base, head, ["pkg/core.py"], settings=ONLY_PYTEST,
                      acceptance=["tests/test_broken.py::test_broken", "tests/test_core.py"])
    assert check(report, "pytest").passed  # the broken test is not new
    acceptance = check(report, "acceptance")
    assert not acceptance.passed and not report.passed
    assert acceptance.new_failures == ["tests/test_broken.py::test_broken - assert 1 == 2"]
    assert acceptance.command[-2:] == ["tests/test_broken.py::test_broken", "tests/test_core.py"]


@needs_bwrap
@pytest.mark.timeout(300)
def test_missing_acceptance_test_fails(tmp_path: Path) -> None:
    base = make_repo(tmp_path)
    head = make_head(base, tmp_path, {})
    report = validate(base, head, [], settings=ONLY_PYTEST,
                      acceptance=["tests/test_core.py::test_not_written_yet"])
    acceptance = check(report, "acceptance")
    assert not acceptance.passed
    assert len(acceptance.new_failures) == 1 and "usage error" in acceptance.new_failures[0]
    assert "not found: tests/test_core.py::test_not_written_yet" in acceptance.new_failures[0]


@needs_bwrap
@pytest.mark.timeout(300)
def test_collection_error_is_a_failure_and_no_tests_is_not_run(tmp_path: Path) -> None:
    base = make_repo(tmp_path, {"tests/test_core.py": None})
    nothing = validate(base, make_head(base, tmp_path, {}), [], settings=ONLY_PYTEST)
    empty = check(nothing, "pytest")
    assert (empty.state, empty.passed, empty.tests_run) == ("not_run", False, 0)
    assert empty.skipped_reason == "no test was collected"
    assert not nothing.passed and nothing.missing == ["pytest: no test was collected"]
    shutil.rmtree(tmp_path / "head")
    bad = "import module_that_is_not_there\n\n\ndef test_x() -> None:\n    pass\n"
    head = make_head(base, tmp_path, {"tests/test_bad.py": bad})
    result = check(validate(base, head, ["tests/test_bad.py"], settings=ONLY_PYTEST), "pytest")
    assert result.new_failures == [
        "tests/test_bad.py - collection error: "
        "ModuleNotFoundError: No module named 'module_that_is_not_there'"
    ]


LONG_LINE = "VALUE = 'a string long enough to break a forty character limit'\n"


@needs_bwrap
@pytest.mark.timeout(300)
def test_profiled_ruff_config_applies_only_without_a_repo_config(tmp_path: Path) -> None:
    profiled = tmp_path / "state" / "ruff.toml"
    write_tree(profiled.parent, {"ruff.toml": 'line-length = 40\n[lint]\nselect = ["E501"]\n'})
    ruff_only = ValidationSettings(pyright=False, pytest=False)

    base = make_repo(tmp_path, {"pyproject.toml": "[project]\nname = 'proj'\n"})
    head = make_head(base, tmp_path, {"pkg/consts.py": LONG_LINE})
    result = check(validate(base, head, ["pkg/consts.py"], settings=ruff_only,
                            ruff_config=profiled), "ruff")
    assert [f.split()[:2] for f in result.new_failures] == [["pkg/consts.py:1:", "E501"]]

    shutil.rmtree(tmp_path / "base")
    shutil.rmtree(tmp_path / "head")
    base = make_repo(tmp_path)  # has its own [tool.ruff] with line-length 100
    head = make_head(base, tmp_path, {"pkg/consts.py": LONG_LINE})
    result = check(validate(base, head, ["pkg/consts.py"], settings=ruff_only,
                            ruff_config=profiled), "ruff")
    assert result.passed and result.head_failures == 0


@needs_bwrap
@pytest.mark.timeout(300)
def test_src_layout_is_importable(tmp_path: Path) -> None:
    base = make_repo(tmp_path, {"pkg/__init__.py": None, "pkg/core.py": None,
                                "src/pkg/__init__.py": "", "src/pkg/core.py": CORE})
    head = make_head(base, tmp_path, {})
    report = validate(base, head, [], settings=ONLY_PYTEST, acceptance=["tests/test_core.py"])
    assert check(report, "acceptance").passed, check(report, "acceptance").output_tail


@needs_bwrap
@pytest.mark.timeout(300)
def test_pyright_uses_the_repository_settings(tmp_path: Path) -> None:
    strict = PYPROJECT + '\n[tool.pyright]\ntypeCheckingMode = "strict"\n'
    base = make_repo(tmp_path, {"pyproject.toml": strict})
    head = make_head(base, tmp_path, {"pkg/core.py": "import json\n" + CORE})
    only_pyright = ValidationSettings(ruff=False, pytest=False)
    result = check(validate(base, head, ["pkg/core.py"], settings=only_pyright), "pyright")
    # reportUnusedImport is an error only in strict mode, which only the repo's config asks for.
    assert [f.split()[:2] for f in result.new_failures] == [
        ["pkg/core.py:1:", "reportUnusedImport"]
    ]


@needs_bwrap
@pytest.mark.timeout(300)
def test_a_tool_broken_on_both_sides_is_flagged_not_failed(tmp_path: Path) -> None:
    broken_config = PYPROJECT.replace(
        'testpaths = ["tests"]', 'testpaths = ["tests"]\naddopts = "--no-such-option"'
    )
    base = make_repo(tmp_path, {"pyproject.toml": broken_config})
    head = make_head(base, tmp_path, {})
    report = validate(base, head, [], settings=ONLY_PYTEST)
    result = check(report, "pytest")
    assert result.state == "not_run" and not result.passed and result.new_failures == []
    assert result.skipped_reason is not None
    assert "could not run on the base nor on the change" in result.skipped_reason
    assert "--no-such-option" in result.skipped_reason
    assert not report.passed and not report.failed  # not validated, rather than failed


def test_renamed_symbol_in_an_old_failure_is_not_new() -> None:
    from diffusellm.pipeline.validate.findings import Finding, new_findings

    base = [Finding(("pyright", "a.py", "bad type in function \"naturalsize\""), "a.py:3: ...")]
    head = [Finding(("pyright", "a.py", "bad type in function \"natural_size\""), "a.py:3: ...")]
    assert new_findings(base, head) == ["a.py:3: ..."]
    assert new_findings(base, head, {"natural_size": "naturalsize"}) == []
    other = [Finding(("pyright", "a.py", "bad type in function \"natural_size_x\""), "a.py:4: x")]
    assert new_findings(base, other, {"natural_size": "naturalsize"}) == ["a.py:4: x"]


def bare_python(tmp_path: Path) -> Path:
    """A virtual environment without pytest, ruff or pyright: a repository's env before setup."""
    venv = tmp_path / "bare-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    return venv


@needs_bwrap
@pytest.mark.timeout(300)
def test_a_missing_tool_is_not_run_and_a_required_one_fails_the_report(tmp_path: Path) -> None:
    venv = bare_python(tmp_path)
    base = make_repo(tmp_path)
    head = make_head(base, tmp_path, {"pkg/core.py": CORE + "\n\ndef noop() -> None:\n    pass\n"})
    settings = ValidationSettings(python=str(venv / "bin" / "python"))
    report = validate_change(
        base_dir=base, head_dir=head, changed_files=["pkg/core.py"], tests=None,
        acceptance_tests=[], sandbox=BubblewrapSandbox(ro_paths=[venv]), settings=settings,
    )
    assert [c.state for c in report.checks] == ["not_run"] * 3
    tests = check(report, "pytest")
    assert tests.skipped_reason is not None and "pytest is not available to" in tests.skipped_reason
    assert "No module named pytest" in tests.skipped_reason
    assert not report.passed and not report.failed
    assert [m.split(":")[0] for m in report.missing] == ["pytest"]
    opted_out = report.model_copy(update={"required": []})
    assert opted_out.passed and len(opted_out.unchecked) == 3


EXITS_WITHOUT_REPORT = """\
import os


def pytest_configure(config):
    os._exit(1)
"""


@needs_bwrap
@pytest.mark.timeout(300)
def test_pytest_exiting_1_without_a_report_is_a_failure(tmp_path: Path) -> None:
    base = make_repo(tmp_path)
    head = make_head(base, tmp_path, {"conftest.py": EXITS_WITHOUT_REPORT})
    result = check(validate(base, head, ["conftest.py"], settings=ONLY_PYTEST), "pytest")
    assert result.state == "failed" and len(result.new_failures) == 1
    assert "exit code 1" in result.new_failures[0]
