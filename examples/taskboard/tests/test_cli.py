"""Tests for the command line, run in-process against boards in temporary folders."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from unittest import mock

import pytest

from taskboard.cli import main
from taskboard.storage import JsonStore

TODAY = date(2024, 5, 6)


def run(args: list[str], project: Path, env: dict[str, str] | None = None) -> int:
    return main(args, env=env or {}, cwd=project, today=TODAY)


def test_init_add_done_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / ".git").mkdir()
    assert run(["init", "--name", "home"], tmp_path) == 0
    assert run(["add", "Pay rent", "--due", "2024-05-08"], tmp_path) == 0
    assert run(["add", "Water plants", "--tag", "garden"], tmp_path) == 0
    assert run(["done", "water-plants"], tmp_path) == 0
    capsys.readouterr()
    assert run(["list", "--all"], tmp_path) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["[ ] Pay rent (due in 2 days)", "[x] Water plants"]
    assert JsonStore(tmp_path / ".taskboard" / "board.json").load().name == "home"


def test_refused_change_exits_1_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["add", "Pay rent", "--due", "someday"], tmp_path) == 1
    assert "taskboard: error: cannot read due date 'someday'" in capsys.readouterr().err


def test_list_on_a_missing_board_says_how_to_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["list"], tmp_path) == 1
    assert "run `taskboard init` first" in capsys.readouterr().err


def test_file_and_root_options_pick_the_board(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other"
    (other / ".taskboard").mkdir(parents=True)
    assert run(["--file", str(tmp_path / "x.json"), "where"], tmp_path) == 0
    assert run(["--root", str(other / "docs"), "where"], tmp_path) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [str(tmp_path / "x.json"), str(other.resolve() / ".taskboard" / "board.json")]


def test_verbose_environment_variable_shows_details(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {"TASKBOARD_FILE": str(tmp_path / "b.json"), "TASKBOARD_VERBOSE": "yes"}
    run(["add", "Pay rent", "--tag", "money"], tmp_path, env)
    capsys.readouterr()
    assert run(["list"], tmp_path, env) == 0
    assert capsys.readouterr().out == "[ ] Pay rent <pay-rent> #money\n"


def test_verbosity_is_asked_of_the_helper(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    board_file = str(tmp_path / "b.json")
    run(["--file", board_file, "add", "Pay rent"], tmp_path)
    capsys.readouterr()
    with mock.patch("taskboard.helpers.get_verbose_flag", return_value=True) as verbose:
        assert run(["--file", board_file, "list"], tmp_path) == 0
    verbose.assert_called_once_with({})
    assert capsys.readouterr().out == "[ ] Pay rent <pay-rent>\n"


def test_missing_subcommand_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run([], tmp_path)
    assert exit_info.value.code == 2
