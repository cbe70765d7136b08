"""End to end on a real third-party project (humanize 4.17.0 from its PyPI sdist): each operation kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from diffusellm.config import Settings
from diffusellm.pipeline.job import RunReport
from diffusellm.pipeline.runner import run_spec
from diffusellm.pipeline.spec import load_spec_text
from diffusellm.pipeline.validate.sandbox import BubblewrapSandbox
from tests.conftest import git, unpack_sdist

pytestmark = pytest.mark.slow


@pytest.fixture
def humanize(tmp_path: Path) -> Path:
    return unpack_sdist("humanize-4.17.0", tmp_path / "src")


def _run(settings: Settings, repo: Path, spec_yaml: str) -> RunReport:
    head_before = git(repo, "rev-parse", "HEAD")
    status_before = git(repo, "status", "--porcelain")
    report = run_spec(settings, load_spec_text(spec_yaml), repo, sandbox=BubblewrapSandbox())
    assert git(repo, "rev-parse", "HEAD") == head_before, "the user's HEAD moved"
    assert git(repo, "status", "--porcelain") == status_before, "the user's checkout changed"
    assert git(repo, "branch", "--show-current").strip() == "main"
    return report


def _assert_green(report: RunReport) -> None:
    failures = {c.name: (c.state, c.skipped_reason, c.new_failures) for c in report.validation.checks if not c.passed}
    assert report.status == "succeeded", failures
    pytest_check = next(c for c in report.validation.checks if c.name == "pytest")
    assert pytest_check.passed and pytest_check.skipped_reason is None
    assert report.branch and report.commit


def test_rename_and_add_parameter(settings: Settings, humanize: Path) -> None:
    report = _run(
        settings,
        humanize,
        """
title: Rename naturalsize to natural_size and add strict to intcomma
operations:
  - op: rename_symbol
    target: humanize.filesize.naturalsize
    new_name: natural_size
  - op: add_parameter
    target: humanize.number.intcomma
    name: strict
    default: "False"
    kind: keyword_only
""",
    )
    _assert_green(report)
    assert report.branch is not None
    filesize = git(humanize, "show", f"{report.branch}:src/humanize/filesize.py")
    assert "def natural_size(" in filesize and "def naturalsize(" not in filesize
    init = git(humanize, "show", f"{report.branch}:src/humanize/__init__.py")
    assert "natural_size" in init and "naturalsize" not in init
    tests = git(humanize, "show", f"{report.branch}:tests/test_filesize.py")
    assert "humanize.natural_size(" in tests and "humanize.naturalsize(" not in tests
    number = git(humanize, "show", f"{report.branch}:src/humanize/number.py")
    assert "strict: bool = False" in number or "strict=False" in number


def test_move_symbol(settings: Settings, humanize: Path) -> None:
    report = _run(
        settings,
        humanize,
        """
title: Move intcomma to its own module
operations:
  - op: move_symbol
    target: humanize.number.intcomma
    to_module: humanize.numfmt
""",
    )
    _assert_green(report)
    assert report.branch is not None
    moved = git(humanize, "show", f"{report.branch}:src/humanize/numfmt.py")
    assert "def intcomma(" in moved
    number = git(humanize, "show", f"{report.branch}:src/humanize/number.py")
    assert "def intcomma(" not in number


def test_remove_parameter(settings: Settings, humanize: Path) -> None:
    # humanize has no unused parameter, so first commit one the way a deprecation leaves it:
    # accepted, ignored, and still passed by some callers, by position and by keyword.
    number = humanize / "src/humanize/number.py"
    text = number.read_text()
    text = text.replace(
        "def _format_not_finite(value: float) -> str:",
        "def _format_not_finite(value: float, legacy: bool = False) -> str:",
        1,
    )
    text = text.replace(
        "return _format_not_finite(number)", "return _format_not_finite(number, True)", 1
    )
    text = text.replace(
        "return _format_not_finite(value)\n", "return _format_not_finite(value, legacy=False)\n", 1
    )
    number.write_text(text)
    git(humanize, "commit", "-qam", "Deprecate the legacy flag of _format_not_finite")
    report = _run(
        settings,
        humanize,
        """
title: Remove the legacy flag of _format_not_finite
operations:
  - op: remove_parameter
    target: humanize.number._format_not_finite
    name: legacy
""",
    )
    _assert_green(report)
    assert report.branch is not None
    changed = git(humanize, "show", f"{report.branch}:src/humanize/number.py")
    assert "legacy" not in changed
    assert "return _format_not_finite(number)" in changed
