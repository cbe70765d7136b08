"""The board and its tasks: plain dataclasses with the rules for changing them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import cast

from .helpers import slugify


class BoardError(Exception):
    """A change to the board was refused, e.g. a duplicate title or an unknown task."""


@dataclass
class Task:
    """One thing to do.

    Attributes:
        title: What to do, as the user wrote it.
        due: When it is due, if ever.
        done: Whether it is finished.
        tags: Free-form labels, kept in the order given.
    """

    title: str
    due: date | None = None
    done: bool = False
    tags: list[str] = field(default_factory=lambda: [])

    @property
    def slug(self) -> str:
        """The short identifier commands use to name this task."""
        return slugify(self.title)

    def is_overdue(self, today: date) -> bool:
        """Tell whether the task is unfinished and its due date has passed."""
        return not self.done and self.due is not None and self.due < today

    def to_dict(self) -> dict[str, object]:
        """Return the task as JSON-ready data."""
        return {
            "title": self.title,
            "due": self.due.isoformat() if self.due else None,
            "done": self.done,
            "tags": list(self.tags),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Task:
        """Build a task from data written by `Task.to_dict`.

        Raises:
            BoardError: If a field is missing or has the wrong type.
        """
        title, due, done = data.get("title"), data.get("due"), data.get("done", False)
        tags = data.get("tags", [])
        if not isinstance(title, str) or not isinstance(done, bool) or not isinstance(tags, list):
            raise BoardError(f"malformed task: {dict(data)!r}")
        try:
            due_date = date.fromisoformat(due) if isinstance(due, str) else None
        except ValueError:
            due_date = None
        if due is not None and due_date is None:
            raise BoardError(f"malformed due date in task {title!r}: {due!r}")
        tag_list = [str(tag) for tag in cast("list[object]", tags)]
        return cls(title, due_date, done, tag_list)


@dataclass
class Board:
    """A named list of tasks, at most one per slug."""

    name: str
    tasks: list[Task] = field(default_factory=lambda: [])

    def add_task(self, title: str, due: date | None = None, tags: Iterable[str] = ()) -> Task:
        """Add a new unfinished task.

        Raises:
            BoardError: If a task with the same slug is already on the board.
        """
        task = Task(title.strip(), due, tags=list(tags))
        if any(existing.slug == task.slug for existing in self.tasks):
            raise BoardError(f"a task named {task.slug!r} is already on board {self.name!r}")
        self.tasks.append(task)
        return task

    def find(self, slug: str) -> Task:
        """Return the task with this slug.

        Raises:
            BoardError: If no task has this slug.
        """
        for task in self.tasks:
            if task.slug == slug:
                return task
        raise BoardError(f"no task {slug!r} on board {self.name!r}")

    def complete(self, slug: str) -> Task:
        """Mark a task as done and return it."""
        task = self.find(slug)
        task.done = True
        return task

    def pending(self) -> list[Task]:
        """Unfinished tasks, soonest due first, tasks without a due date last."""
        open_tasks = [task for task in self.tasks if not task.done]
        return sorted(open_tasks, key=lambda task: (task.due is None, task.due or date.max))

    def overdue(self, today: date) -> list[Task]:
        """Unfinished tasks whose due date has passed."""
        return [task for task in self.pending() if task.is_overdue(today)]

    def to_dict(self) -> dict[str, object]:
        """Return the board as JSON-ready data."""
        return {"name": self.name, "tasks": [task.to_dict() for task in self.tasks]}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Board:
        """Build a board from data written by `Board.to_dict`.

        Raises:
            BoardError: If the data is not a board.
        """
        name, tasks = data.get("name"), data.get("tasks")
        if not isinstance(name, str) or not isinstance(tasks, list):
            raise BoardError("malformed board: expected a name and a list of tasks")
        board = cls(name)
        for item in cast("list[object]", tasks):
            if not isinstance(item, dict):
                raise BoardError(f"malformed task entry on board {name!r}: {item!r}")
            board.tasks.append(Task.from_dict(cast("dict[str, object]", item)))
        return board
