"""Whole runs on hostile repositories: links out, a sandbox that plants a FIFO report; each run ends by itself."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import git
from tests.e2e.test_cli_failures import cli, snapshot, write_spec
from tests.pipeline.test_hostile_repos import MARKER, hostile_repo
from tests.pipeline.test_hostile_repos import snapshot as folder_snapshot

# Runs in the sandbox after pytest wrote its junit report: swaps it for a FIFO (an open() on the host
# would block forever).
FIFO_CONFTEST = (
    "import os\n\n\ndef pytest_unconfigure(config):\n"
    "    path = getattr(config.option, 'xmlpath', None)\n"
    "    if path and os.path.exists(path):\n"
    "        os.unlink(path)\n        os.mkfifo(path)\n"
)
RENAME = (
    "title: Rename get_flag\noperations:\n  - op: rename_symbol\n"
    "    target: pkg.helpers.get_flag\n    new_name: get_mode\n"
)
ADD_TEST = (
    "title: Plant a test\noperations:\n  - op: add_test\n    target: pkg.helpers.get_flag\n"
    "    path: {path}\n    source: |\n      def test_planted() -> None:\n          assert True\n"
)


def test_a_rename_run_on_a_hostile_repository_ends_and_stays_inside(tmp_path: Path) -> None:
    repo, decoy = hostile_repo(tmp_path, absolute=True)
    (repo / "conftest.py").write_text(FIFO_CONFTEST)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Plant a FIFO report")
    before = folder_snapshot(decoy)
    done = cli(tmp_path, "run", str(write_spec(tmp_path, RENAME)), "--repo", str(repo), "--json")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert folder_snapshot(decoy) == before
    assert set(report["changed_files"]) == {"pkg/helpers.py", "pkg/app.py", "pkg/legacy.py"}
    pytest_check = next(c for c in report["validation"]["checks"] if c["name"] == "pytest")
    # Both sides' reports were FIFOs: nothing was read from them, and a check whose reports were
    # refused is never "passed" (pytest is required), so no branch is made.
    assert pytest_check["base_failures"] == pytest_check["head_failures"] == 1, pytest_check
    assert pytest_check["state"] != "passed" and not report["validation"]["passed"], pytest_check
    assert report["branch"] is None
    patch = Path(report["patch_path"]).read_bytes()
    assert MARKER.encode() not in patch, "content from outside reached the change"
    assert "get_mode".encode("latin-1") in patch and "café".encode("latin-1") in patch, "the PEP 263 file kept its encoding"


def test_runs_that_would_write_through_a_link_or_into_git_exit_2(tmp_path: Path) -> None:
    repo, decoy = hostile_repo(tmp_path, absolute=True)
    before, repo_before = folder_snapshot(decoy), snapshot(repo)
    for path, named in (("tests_link/test_planted.py", "tests_link is a symbolic link"),
                        (".git/hooks/test_planted.py", "is inside .git/")):
        done = cli(tmp_path, "run", str(write_spec(tmp_path, ADD_TEST.format(path=path))), "--repo", str(repo))
        assert done.returncode == 2, done.stderr
        assert named in done.stderr and "Traceback" not in done.stderr
    assert folder_snapshot(decoy) == before and snapshot(repo) == repo_before
    assert not (decoy / "tests" / "test_planted.py").exists()
