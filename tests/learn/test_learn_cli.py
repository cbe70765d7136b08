"""`diffusellm learn` as a user runs it: a real `diffusellm run` is remembered, merging its branch
accepts it, and bad requests say what to do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import git, make_repo

FILES = {
    "pkg/__init__.py": "",
    "pkg/text.py": '"""Text."""\n\n\ndef shout(text: str) -> str:\n    """Loud."""\n    return text.upper()\n',
    "tests/test_text.py": 'from pkg.text import shout\n\n\ndef test_shout() -> None:\n    assert shout("a") == "A"\n',
}
SPEC = "title: Rename shout\noperations:\n  - op: rename_symbol\n    target: pkg.text.shout\n    new_name: yell\n"


def cli(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DIFFUSELLM_STATE_DIR": str(state), "DIFFUSELLM_VALIDATION__PYRIGHT": "false"}
    return subprocess.run(
        [sys.executable, "-m", "diffusellm", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_a_run_is_remembered_and_merging_its_branch_accepts_it(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", FILES)
    state = tmp_path / "state"
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    ran = cli(state, "run", str(spec), "--repo", str(repo), "--json")
    assert ran.returncode == 0, ran.stderr
    branch = json.loads(ran.stdout)["branch"]

    before = json.loads(cli(state, "learn", "status", "--json").stdout)
    assert before["counts"] == {"pending": 1}
    assert before["outcomes"][0]["branch"] == branch
    assert before["outcomes"][0]["operations"] == ["rename_symbol pkg.text.shout"]

    synced = cli(state, "learn", "sync", "--repo", str(repo), "--json")
    assert synced.returncode == 0 and json.loads(synced.stdout) == []
    git(repo, "merge", "-q", "--ff-only", branch)
    synced = json.loads(cli(state, "learn", "sync", "--repo", str(repo), "--json").stdout)
    assert [(o["branch"], o["verdict"], o["verdict_source"]) for o in synced] == [
        (branch, "accepted", "merged into main")
    ]

    # a rename has no model-written code: nothing to learn from, and the message says what would be
    exported = cli(state, "learn", "export", str(tmp_path / "train.jsonl"), "--repo", str(repo))
    assert exported.returncode == 2
    assert "no accepted run" in exported.stderr and "diffusellm learn sync" in exported.stderr
    assert not (tmp_path / "train.jsonl").exists()


def test_verdicts_on_unknown_runs_and_branches_say_what_to_do(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", FILES)
    state = tmp_path / "state"
    unknown = cli(state, "learn", "accept", "job-nope", "--json")
    assert unknown.returncode == 2
    error = json.loads(unknown.stdout)
    assert "job-nope" in error["error"] and "learn status" in error["hint"]
    missing = cli(state, "learn", "sync", "--repo", str(repo), "--into", "no-such-branch")
    assert missing.returncode != 0 and "no-such-branch" in missing.stderr
