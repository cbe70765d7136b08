"""Tests for the board rules: adding, finding, completing and ordering tasks."""

from __future__ import annotations

from datetime import date

import pytest

from taskboard import Board, BoardError, Task


def test_add_task_returns_the_new_open_task() -> None:
    board = Board("work")
    task = board.add_task("  Review PR 42 ", date(2024, 5, 10), tags=["code"])
    assert task == Task("Review PR 42", date(2024, 5, 10), False, ["code"])
    assert board.tasks == [task]
    assert task.slug == "review-pr-42"


def test_add_task_refuses_a_second_task_with_the_same_slug(board: Board) -> None:
    with pytest.raises(BoardError, match="'pay-rent' is already on board 'home'"):
        board.add_task("pay RENT")
    assert len(board.tasks) == 3


def test_find_and_complete_by_slug(board: Board) -> None:
    task = board.complete("water-plants")
    assert task.done is True
    assert board.find("water-plants") is task


def test_find_unknown_slug_names_the_board(board: Board) -> None:
    with pytest.raises(BoardError, match="no task 'walk-dog' on board 'home'"):
        board.find("walk-dog")


def test_pending_lists_open_tasks_soonest_first(board: Board) -> None:
    board.add_task("File taxes", date(2024, 5, 7))
    assert [task.slug for task in board.pending()] == ["file-taxes", "pay-rent", "water-plants"]


def test_overdue_skips_finished_and_undated_tasks(board: Board, today: date) -> None:
    late = board.add_task("Return library book", date(2024, 5, 2))
    assert board.overdue(today) == [late]
    assert late.is_overdue(today) and not board.find("book-dentist").is_overdue(today)


def test_board_round_trips_through_dict(board: Board) -> None:
    assert Board.from_dict(board.to_dict()) == board


@pytest.mark.parametrize(
    "data",
    [
        {"name": "x"},
        {"name": "x", "tasks": ["not a task"]},
        {"name": "x", "tasks": [{"title": "t", "done": "no"}]},
        {"name": "x", "tasks": [{"title": "t", "done": False, "due": "soon"}]},
    ],
)
def test_from_dict_refuses_malformed_data(data: dict[str, object]) -> None:
    with pytest.raises(BoardError, match="malformed"):
        Board.from_dict(data)
