"""`diffusellm profile` and `digest` as a user calls them: JSON keys, state folder, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import make_repo, seed_converted_model

FILES = {
    "lib/__init__.py": '"""Lib."""\n',
    "lib/core.py": (
        '"""Core."""\n\nMAX_SIZE = 10\n\n\nclass ShapeStore:\n    """Store."""\n\n'
        "    def add_shape(self, shape_name: str) -> None:\n"
        '        """Add."""\n        self.last_name = shape_name\n\n\n'
        "def make_store() -> ShapeStore:\n"
        '    """Make."""\n    store = ShapeStore()\n    store.add_shape("circle")\n    return store\n'
    ),
    "lib/data.bin": "\x00\x01binary",
}


def cli(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    seed_converted_model(state)
    env = {**os.environ, "DIFFUSELLM_STATE_DIR": str(state)}
    return subprocess.run(
        [sys.executable, "-m", "diffusellm", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_profile_json_has_the_promised_keys(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", FILES, message="Add core module")
    done = cli(tmp_path / "state", "profile", str(repo), "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    for key in (
        "indent",
        "quote_style",
        "line_length",
        "docstring_style",
        "naming",
        "commit_convention",
        "changelog",
        "sources",
        "guidance",
        "test_command",
    ):
        assert key in data
    assert data["naming"]["class"] == "PascalCase" and data["naming"]["function"] == "snake_case"
    assert Path(data["artifacts"]["ruff_config"]).is_file()
    assert Path(data["artifacts"]["naming_db"]).is_file()
    assert str(tmp_path / "state") in data["artifacts"]["ruff_config"]
    assert not (repo / "ruff.toml").exists(), "the profile must not be written into the repository"


def test_digest_json_and_incremental_second_run(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", FILES)
    first = cli(tmp_path / "state", "digest", str(repo), "--json")
    assert first.returncode == 0, first.stderr
    data = json.loads(first.stdout)
    assert data["files_parsed"] >= 2 and data["symbols"] >= 4
    second = json.loads(cli(tmp_path / "state", "digest", str(repo), "--json").stdout)
    assert second["files_parsed"] == 0 and second["files_reused"] == data["files_parsed"]


def test_missing_path_is_exit_code_2(tmp_path: Path) -> None:
    done = cli(tmp_path / "state", "profile", str(tmp_path / "missing"))
    assert done.returncode == 2 and "does not exist" in done.stderr


def test_query_graph_definitions_callers_callees(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", FILES)
    done = cli(
        tmp_path / "state", "query-graph", "--repo", str(repo), "lib.core.ShapeStore", "--json"
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["definitions"][0]["path"] == "lib/core.py"
    assert "lib.core.make_store" in {c["qualname"] for c in data["callers"]}
    done = cli(tmp_path / "state", "query-graph", "--repo", str(repo), "make_store", "--json")
    assert "lib.core.ShapeStore" in json.loads(done.stdout)["callees"]
    unknown = cli(tmp_path / "state", "query-graph", "--repo", str(repo), "no_such_thing")
    assert unknown.returncode == 2 and "no symbol" in unknown.stderr
