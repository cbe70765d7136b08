"""Tests that real ruff accepts the written ruff.toml and that the naming db answers queries."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from diffusellm.errors import RepositoryError
from diffusellm.pipeline.understand.style.infer import profile_style, write_style_artifacts
from tests.pipeline.understand.style.test_profile import camel_repo, snake_repo

# ruff format always writes docstrings with double quotes, whatever quote-style says.
CAMEL_SAMPLE = '''\
"""New helpers."""

import os


def countRecords(folderName, minSize=0):
  """Count records."""
  totalCount = 0
  for entryName in os.listdir(folderName):
    if len(entryName) > minSize and not entryName.startswith('.'):
      totalCount += 1
  return totalCount
'''

SNAKE_SAMPLE = '''\
"""New helpers."""

from __future__ import annotations

import os


def count_records(folder_name: str, min_size: int = 0) -> int:
    """Count records.

    Args:
        folder_name: Where the records are.
        min_size: Shortest name that counts.

    Returns:
        How many records there are.
    """
    return sum(1 for entry in os.listdir(folder_name) if len(entry) > min_size)
'''


def ruff(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ruff", *args], capture_output=True, text=True,
                          check=False)


def test_ruff_accepts_code_in_the_profiled_style(tmp_path: Path) -> None:
    repo = camel_repo(tmp_path / "b")
    out = write_style_artifacts(profile_style(repo), repo, tmp_path / "state")
    config = out["ruff_config"]
    settings = tomllib.loads(config.read_text(encoding="utf-8"))
    assert settings["line-length"] == 120
    assert settings["indent-width"] == 2
    assert settings["format"] == {"quote-style": "single", "indent-style": "space"}
    assert settings["lint"]["pydocstyle"] == {"convention": "numpy"}
    assert "isort" not in settings["lint"]  # the repository does not sort its imports
    sample = tmp_path / "sample.py"
    sample.write_text(CAMEL_SAMPLE, encoding="utf-8")
    formatted = ruff("format", "--check", "--config", str(config), str(sample))
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr
    checked = ruff("check", "--config", str(config), str(sample))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # Without the profile's settings ruff would rewrite the sample: the config is what accepts it.
    assert ruff("format", "--check", "--isolated", str(sample)).returncode == 1


def test_ruff_config_carries_docstring_and_import_rules(tmp_path: Path) -> None:
    repo = snake_repo(tmp_path / "a")
    (repo / "pyproject.toml").write_text("[tool.black]\nline-length = 88\n", encoding="utf-8")
    config = write_style_artifacts(profile_style(repo), repo, tmp_path / "state")["ruff_config"]
    text = config.read_text(encoding="utf-8")
    assert "# line-length: from pyproject.toml [tool.black] line-length" in text
    settings = tomllib.loads(text)
    assert settings["lint"]["pydocstyle"] == {"convention": "google"}
    assert settings["lint"]["isort"] == {
        "known-first-party": ["pkg_a"],
        "required-imports": ["from __future__ import annotations"],
    }
    sample = tmp_path / "sample.py"
    sample.write_text(SNAKE_SAMPLE, encoding="utf-8")
    rules = ("--select", "D,I,E501")
    assert ruff("format", "--check", "--config", str(config), str(sample)).returncode == 0
    checked = ruff("check", "--config", str(config), *rules, str(sample))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    sample.write_text(SNAKE_SAMPLE.replace("from __future__ import annotations\n\n", ""),
                      encoding="utf-8")
    missing = ruff("check", "--config", str(config), *rules, "--output-format", "concise",
                   str(sample))
    assert "I002" in missing.stdout


def test_naming_database(tmp_path: Path) -> None:
    repo = camel_repo(tmp_path / "b")
    db_path = write_style_artifacts(profile_style(repo), repo, tmp_path / "state")["naming_db"]
    assert db_path == tmp_path / "state" / "naming_conventions.db"
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        rows = db.execute(
            "SELECT kind, name, file, line, convention FROM identifiers WHERE name = ?",
            ("loadRecords",),
        ).fetchall()
        assert rows == [("method", "loadRecords", "pkgb/dataStore.py", 13, "camelCase")]
        kinds = dict(db.execute("SELECT kind, convention FROM conventions").fetchall())
        assert kinds["function"] == "camelCase"
        assert kinds["class"] == "PascalCase"
        assert set(kinds) == {"module", "class", "function", "method", "constant", "variable",
                              "parameter"}
        share, count = db.execute(
            "SELECT share, count FROM conventions WHERE kind = 'parameter'").fetchone()
        names = {n for (n,) in db.execute("SELECT name FROM identifiers WHERE kind = 'parameter'")}
        assert names == {"fileName", "maxCount", "rawText", "extraChars", "textLines"}
        assert (share, count) == (1.0, 5)
        source = db.execute("SELECT value FROM meta WHERE key = 'line_length_source'").fetchone()
        assert source[0].startswith("measured")


def test_rewriting_artifacts_replaces_old_database(tmp_path: Path) -> None:
    repo = camel_repo(tmp_path / "b")
    profile = profile_style(repo)
    write_style_artifacts(profile, repo, tmp_path / "state")
    out = write_style_artifacts(profile, repo, tmp_path / "state", files=["pkgb/textUtils.py"])
    with contextlib.closing(sqlite3.connect(out["naming_db"])) as db:
        files = {f for (f,) in db.execute("SELECT DISTINCT file FROM identifiers")}
    assert files == {"pkgb/textUtils.py"}


def test_unwritable_state_folder_is_reported(tmp_path: Path) -> None:
    repo = camel_repo(tmp_path / "b")
    blocker = tmp_path / "state"
    blocker.write_text("a file, not a folder", encoding="utf-8")
    with pytest.raises(RepositoryError, match="cannot write the style artifacts"):
        write_style_artifacts(profile_style(repo), repo, blocker)
