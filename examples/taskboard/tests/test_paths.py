"""Tests for finding the project root and the board file."""

from __future__ import annotations

from pathlib import Path

import pytest

import taskboard.paths as paths
from taskboard.paths import default_board_path


def test_resolve_root_walks_up_to_the_board_folder(tmp_path: Path) -> None:
    (tmp_path / ".taskboard").mkdir()
    nested = tmp_path / "src" / "pkg"
    nested.mkdir(parents=True)
    assert paths.resolve_root(nested) == tmp_path.resolve()


def test_resolve_root_accepts_a_file_and_stops_at_the_nearest_marker(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    inner = tmp_path / "tools"
    inner.mkdir()
    (inner / "pyproject.toml").write_text("[project]\n", encoding="utf-8")
    script = inner / "run.py"
    script.write_text("", encoding="utf-8")
    assert paths.resolve_root(script) == inner.resolve()


def test_resolve_root_without_markers_is_the_start(tmp_path: Path) -> None:
    start = (tmp_path / "loose").resolve()
    start.mkdir()
    if any((d / m).exists() for d in start.parents for m in paths.ROOT_MARKERS):
        pytest.skip("the temporary folder lies inside a project")
    assert paths.resolve_root(start) == start


def test_default_board_path_is_inside_the_board_folder(tmp_path: Path) -> None:
    assert default_board_path(tmp_path) == tmp_path / ".taskboard" / "board.json"


def test_default_board_path_ignores_legacy(tmp_path: Path) -> None:
    assert paths.default_board_path(tmp_path, True) == default_board_path(tmp_path)
    assert default_board_path(tmp_path, legacy=True) == default_board_path(tmp_path)


def test_board_path_from_env_prefers_the_variable(tmp_path: Path) -> None:
    env = {"TASKBOARD_FILE": str(tmp_path / "elsewhere.json")}
    assert paths.board_path_from_env(env, tmp_path) == tmp_path / "elsewhere.json"


def test_board_path_from_env_falls_back_to_the_project_board(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\n", encoding="utf-8")
    found = paths.board_path_from_env({"TASKBOARD_FILE": " "}, tmp_path / "missing-subdir")
    assert found == tmp_path.resolve() / ".taskboard" / "board.json"
