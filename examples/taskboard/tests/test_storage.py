"""Tests for the JSON file store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from taskboard.models import Board
from taskboard.storage import JsonStore, StorageError


def test_saved_board_loads_back_equal(store: JsonStore, board: Board) -> None:
    store.save(board)
    assert store.exists()
    assert store.load() == board


def test_save_writes_readable_json_and_leaves_no_temporary_files(
    store: JsonStore, board: Board
) -> None:
    store.save(board)
    store.save(board)
    data = json.loads(store.path.read_text(encoding="utf-8"))
    assert data["name"] == "home"
    assert [task["title"] for task in data["tasks"]] == ["Pay rent", "Water plants", "Book dentist"]
    assert sorted(p.name for p in store.path.parent.iterdir()) == ["board.json"]


def test_load_without_a_file_says_how_to_start(store: JsonStore) -> None:
    with pytest.raises(StorageError, match="run `taskboard init` first"):
        store.load()


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"name": 3, "tasks": []}'])
def test_load_refuses_files_that_are_not_boards(tmp_path: Path, text: str) -> None:
    path = tmp_path / "board.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(StorageError, match=str(path)):
        JsonStore(path).load()


def test_load_or_create_starts_empty_and_does_not_write(store: JsonStore) -> None:
    assert store.load_or_create("inbox") == Board("inbox")
    assert not store.exists()


def test_load_or_create_reads_an_existing_board(store: JsonStore, board: Board) -> None:
    store.save(board)
    assert store.load_or_create("ignored") == board
