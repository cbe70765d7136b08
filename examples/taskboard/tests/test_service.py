"""Tests for the use cases: each change is saved, listings follow the verbose setting."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from taskboard import BoardError, BoardService
from taskboard.helpers import get_verbose_flag
from taskboard.storage import JsonStore


def test_add_saves_the_task_with_its_parsed_due_date(store: JsonStore, today: date) -> None:
    service = BoardService(store, today=today)
    task = service.add("Pay rent", "+2d", ["money"])
    assert task.due == date(2024, 5, 8)
    assert store.load().tasks == [task]


def test_complete_is_saved_and_unknown_slugs_change_nothing(store: JsonStore, today: date) -> None:
    service = BoardService(store, today=today)
    service.add("Water plants")
    service.complete("water-plants")
    assert store.load().find("water-plants").done is True
    before = store.path.read_text(encoding="utf-8")
    with pytest.raises(BoardError):
        service.complete("walk-dog")
    assert store.path.read_text(encoding="utf-8") == before


def test_init_keeps_an_existing_board(store: JsonStore, today: date) -> None:
    service = BoardService(store, today=today)
    service.init("home")
    service.add("Water plants")
    assert service.init("other").name == "home"
    assert len(store.load().tasks) == 1


def test_listing_shows_slugs_and_tags_only_when_verbose(store: JsonStore, today: date) -> None:
    BoardService(store, today=today).add("Pay rent", "tomorrow", ["money"])
    quiet = BoardService(store, today=today).listing()
    loud = BoardService(store, today=today, verbose=True).listing()
    assert quiet == ["[ ] Pay rent (due in 1 day)"]
    assert loud == ["[ ] Pay rent (due in 1 day) <pay-rent> #money"]


@pytest.mark.parametrize("value", ["1", "no"])
def test_from_env_uses_the_board_file_and_verbose_variables(
    tmp_path: Path, today: date, value: str
) -> None:
    env = {"TASKBOARD_FILE": str(tmp_path / "b.json"), "TASKBOARD_VERBOSE": value}
    service = BoardService.from_env(env, tmp_path, today=today)
    assert service.store.path == tmp_path / "b.json"
    assert service.verbose is get_verbose_flag(env)
