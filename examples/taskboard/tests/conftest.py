"""Shared fixtures: a fixed date, a store in a temporary folder and a small board."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from taskboard.models import Board
from taskboard.storage import JsonStore

TODAY = date(2024, 5, 6)


@pytest.fixture
def today() -> date:
    """A fixed Monday, so due-date arithmetic does not depend on the calendar."""
    return TODAY


@pytest.fixture
def store(tmp_path: Path) -> JsonStore:
    """A store whose file does not exist yet."""
    return JsonStore(tmp_path / ".taskboard" / "board.json")


@pytest.fixture
def board() -> Board:
    """A board with one task due soon, one without a due date and one finished."""
    board = Board("home")
    board.add_task("Pay rent", date(2024, 5, 8), tags=["money"])
    board.add_task("Water plants")
    board.add_task("Book dentist", date(2024, 5, 1)).done = True
    return board
