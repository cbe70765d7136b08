"""The use cases behind each command: load the board, change it, save it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path

import taskboard.paths as paths

from .helpers import format_due, get_verbose_flag, parse_due_date
from .models import Board, Task
from .storage import JsonStore

DEFAULT_BOARD_NAME = "tasks"


class BoardService:
    """Runs board changes against a store, saving after each one.

    Attributes:
        store: Where the board is kept.
        today: The date due dates and overdue checks are relative to.
        verbose: Whether listings show slugs and tags.
    """

    def __init__(self, store: JsonStore, *, today: date, verbose: bool = False) -> None:
        self.store = store
        self.today = today
        self.verbose = verbose

    @classmethod
    def from_env(cls, env: Mapping[str, str], cwd: Path, *, today: date) -> BoardService:
        """Open the board the environment points to.

        The board file comes from `paths.board_path_from_env` and verbosity from
        `get_verbose_flag`, so `TASKBOARD_FILE` and `TASKBOARD_VERBOSE` both apply.
        """
        store = JsonStore(paths.board_path_from_env(env, cwd))
        return cls(store, today=today, verbose=get_verbose_flag(env))

    def init(self, name: str) -> Board:
        """Create an empty board, or return the existing one untouched."""
        if self.store.exists():
            return self.store.load()
        board = Board(name)
        self.store.save(board)
        return board

    def add(self, title: str, due_text: str | None = None, tags: Iterable[str] = ()) -> Task:
        """Add a task, reading its due date from what the user typed."""
        board = self.store.load_or_create(DEFAULT_BOARD_NAME)
        due = parse_due_date(due_text, today=self.today) if due_text else None
        task = board.add_task(title, due, tags)
        self.store.save(board)
        return task

    def complete(self, slug: str) -> Task:
        """Mark a task as done and save the board."""
        board = self.store.load()
        task = board.complete(slug)
        self.store.save(board)
        return task

    def listing(self, *, include_done: bool = False) -> list[str]:
        """Lines describing the tasks, unfinished ones first."""
        board = self.store.load()
        tasks = board.pending()
        if include_done:
            tasks += [task for task in board.tasks if task.done]
        return [self.describe(task) for task in tasks]

    def describe(self, task: Task) -> str:
        """One line for a task: a check box, the title, the due date and, when verbose, details."""
        box = "[x]" if task.done else "[ ]"
        parts = [f"{box} {task.title}"]
        when = format_due(task.due, today=self.today)
        if when and not task.done:
            parts.append(f"({when})")
        if self.verbose:
            parts.append(f"<{task.slug}>")
            parts.extend(f"#{tag}" for tag in task.tags)
        return " ".join(parts)
