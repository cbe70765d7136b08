"""The CLI on bad input and failing changes: clear messages, the right exit code, the repository untouched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import git, make_repo

PKG = {
    "pkg/__init__.py": '"""Package."""\n',
    "pkg/helpers.py": (
        '"""Helpers."""\n\n\ndef get_flag(env: dict[str, str]) -> bool:\n'
        '    """Read the flag."""\n    return env.get("FLAG") == "1"\n'
    ),
    "pkg/app.py": (
        '"""App."""\n\nfrom pkg.helpers import get_flag\n\n\ndef main() -> bool:\n'
        '    """Entry."""\n    return get_flag({"FLAG": "1"})\n'
    ),
    "tests/test_app.py": "from pkg.app import main\n\n\ndef test_main() -> None:\n    assert main()\n",
}
RENAME = (
    "title: Rename get_flag\noperations:\n  - op: rename_symbol\n"
    "    target: pkg.helpers.get_flag\n    new_name: {new}\n"
)


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DIFFUSELLM_STATE_DIR": str(tmp_path / "state")}
    return subprocess.run(
        [sys.executable, "-m", "diffusellm", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def snapshot(repo: Path) -> tuple[str, str, str]:
    return (
        git(repo, "rev-parse", "HEAD"),
        git(repo, "status", "--porcelain"),
        git(repo, "branch", "-a"),
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", PKG)


def run_rename(tmp_path: Path, repo: Path, new: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """`diffusellm run` of the rename spec (get_flag → `new`) on `repo`."""
    return cli(tmp_path, "run", str(write_spec(tmp_path, RENAME.format(new=new))), "--repo", str(repo), *extra)


def write_spec(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


def test_not_a_git_repository(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "a.py").write_text("x = 1\n")
    done = run_rename(tmp_path, plain, "x")
    assert done.returncode == 2
    assert "not a git repository" in done.stderr.lower()


def test_missing_path_and_bad_spec(tmp_path: Path, repo: Path) -> None:
    done = cli(
        tmp_path,
        "run",
        str(write_spec(tmp_path, RENAME.format(new="x"))),
        "--repo",
        str(tmp_path / "nope"),
    )
    assert done.returncode == 2 and "does not exist" in done.stderr
    bad = write_spec(tmp_path, "title: t\noperations:\n  - op: explode\n    target: pkg.a\n")
    done = cli(tmp_path, "run", str(bad), "--repo", str(repo), "--json")
    assert done.returncode == 2
    error = json.loads(done.stdout)
    assert "operations[0] (explode)" in error["error"] and error["exit_code"] == 2


def test_bad_config_value(tmp_path: Path, repo: Path) -> None:
    done = run_rename(tmp_path, repo, "x", "--set", "sandbox.memory_mb=lots")
    assert done.returncode == 2 and "sandbox.memory_mb" in done.stderr


def test_missing_target_changes_nothing(tmp_path: Path, repo: Path) -> None:
    before = snapshot(repo)
    spec = write_spec(tmp_path, RENAME.format(new="x").replace("get_flag\n", "get_flog\n"))
    done = cli(tmp_path, "run", str(spec), "--repo", str(repo))
    assert done.returncode == 2 and "get_flog" in done.stderr
    assert snapshot(repo) == before


def test_name_clash_refused(tmp_path: Path, repo: Path) -> None:
    before = snapshot(repo)
    (repo / "pkg/helpers.py").write_text(PKG["pkg/helpers.py"] + "\n\ndef other() -> int:\n    return 1\n")
    git(repo, "commit", "-qam", "Add other")
    before = snapshot(repo)
    done = run_rename(tmp_path, repo, "other")
    assert done.returncode == 2 and "other" in done.stderr
    assert snapshot(repo) == before


def test_uncommitted_changes_in_the_way(tmp_path: Path, repo: Path) -> None:
    (repo / "pkg/app.py").write_text(PKG["pkg/app.py"] + "# my unsaved work\n")
    before = snapshot(repo)
    done = run_rename(tmp_path, repo, "get_mode")
    assert done.returncode == 2 and "pkg/app.py" in done.stderr and "stash" in done.stderr
    assert snapshot(repo) == before
    assert (repo / "pkg/app.py").read_text().endswith("# my unsaved work\n")


def test_syntax_error_in_repository_refused(tmp_path: Path, repo: Path) -> None:
    # A file that uses the target but cannot be parsed: renaming around it would leave it stale.
    (repo / "pkg/broken.py").write_text("from pkg.helpers import get_flag\n\ndef broken(:\n    get_flag()\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "Add broken module")
    before = snapshot(repo)
    done = run_rename(tmp_path, repo, "get_mode")
    assert done.returncode == 2 and "pkg/broken.py" in done.stderr
    assert snapshot(repo) == before


def test_success_creates_branch_and_json_report(tmp_path: Path, repo: Path) -> None:
    (repo / "notes.txt").write_text("uncommitted but not in the way\n")
    done = run_rename(tmp_path, repo, "get_mode", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["branch"].startswith("diffusellm/") and report["commit"]
    assert set(report["changed_files"]) >= {"pkg/helpers.py", "pkg/app.py"}
    assert report["validation"]["passed"] is True
    assert {c["name"] for c in report["validation"]["checks"]} >= {"ruff", "pyright", "pytest"}
    assert all(c["new_failures"] == [] for c in report["validation"]["checks"])
    assert report["warnings"], "uncommitted work should be mentioned"
    assert git(repo, "branch", "--show-current").strip() == "main"
    assert "def get_mode(" in git(repo, "show", f"{report['branch']}:pkg/helpers.py")
    assert (repo / "notes.txt").exists()


def test_change_that_breaks_a_test_fails_validation_without_branch(tmp_path: Path) -> None:
    files = dict(PKG)
    # A test that pins the function's name in a plain string, which the codemod is right not to rewrite.
    files["tests/test_lookup.py"] = (
        "import pkg.helpers\n\n\ndef test_lookup() -> None:\n    assert pkg.helpers.get_flag.__name__ == 'get_flag'\n"
    )
    repo = make_repo(tmp_path / "repo2", files)
    before = snapshot(repo)
    done = run_rename(tmp_path, repo, "get_mode", "--json")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["branch"] is None and report["validation"]["passed"] is False
    pytest_check = next(c for c in report["validation"]["checks"] if c["name"] == "pytest")
    assert any("test_lookup" in failure for failure in pytest_check["new_failures"])
    assert snapshot(repo) == before


def test_hanging_and_escaping_tests_are_contained(tmp_path: Path) -> None:
    files = dict(PKG)
    files["tests/test_bad.py"] = (
        "import socket\nimport time\nfrom pathlib import Path\n\nfrom pkg.helpers import get_flag\n\n\n"
        "def test_flag() -> None:\n    assert not get_flag({})\n\n\n"
        "def test_hangs() -> None:\n    time.sleep(3600)\n\n\n"
        "def test_network() -> None:\n    socket.create_connection(('127.0.0.1', 9), timeout=2)\n\n\n"
        "def test_write_outside() -> None:\n    Path.home().joinpath('escaped.txt').write_text('x')\n"
        "    Path('/usr/escaped.txt').write_text('x')\n"
    )
    repo = make_repo(tmp_path / "repo3", files)
    done = run_rename(tmp_path, repo, "get_mode", "--json", "--set", "validation.test_timeout_s=5")
    report = json.loads(done.stdout)
    pytest_check = next(c for c in report["validation"]["checks"] if c["name"] == "pytest")
    # The three bad tests fail on the base commit too, so they are not new failures of the change.
    assert pytest_check["base_failures"] >= 3 and pytest_check["new_failures"] == []
    assert done.returncode == 0, done.stderr
    assert not Path("/usr/escaped.txt").exists()


def test_tests_that_cannot_run_leave_the_change_not_validated_without_branch(tmp_path: Path) -> None:
    """The repository's tests need a package nobody installed: pytest cannot run on the base or on the
    change, so the required check did not run; that is no pass (exit 1, no branch, how to fix it)."""
    files = dict(PKG)
    files["tests/conftest.py"] = "import a_dependency_nobody_installed  # noqa: F401\n"
    repo = make_repo(tmp_path / "repo3", files)
    before = snapshot(repo)
    done = run_rename(tmp_path, repo, "get_mode", "--json")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "not_validated" and report["branch"] is None
    assert report["validation"]["passed"] is False
    pytest_check = next(c for c in report["validation"]["checks"] if c["name"] == "pytest")
    assert pytest_check["state"] == "not_run" and pytest_check["passed"] is False
    assert "`setup:`" in report["stopped_because"]
    assert snapshot(repo) == before
    human = run_rename(tmp_path, repo, "get_mode")
    assert human.returncode == 1 and "NOT RUN" in human.stdout and "no branch created" in human.stdout
