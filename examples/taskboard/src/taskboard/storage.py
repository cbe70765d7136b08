"""Keeping a board on disk: one JSON file, written atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import cast

from .models import Board, BoardError


class StorageError(Exception):
    """The board file could not be read or written."""


class JsonStore:
    """A board stored as one JSON file.

    Attributes:
        path: Where the board lives.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def exists(self) -> bool:
        """Tell whether the board file has been written yet."""
        return self.path.is_file()

    def save(self, board: Board) -> None:
        """Write the board, replacing the file in one step so readers never see half of it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(board.to_dict(), indent=2, sort_keys=True) + "\n"
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".board-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def load(self) -> Board:
        """Read the board back.

        Raises:
            StorageError: If the file is missing, is not JSON or is not a board.
        """
        try:
            data: object = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise StorageError(f"no board at {self.path}; run `taskboard init` first") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise StorageError(f"cannot read board {self.path}: {exc}") from None
        if not isinstance(data, dict):
            raise StorageError(f"{self.path} does not hold a board")
        try:
            return Board.from_dict(cast("dict[str, object]", data))
        except BoardError as exc:
            raise StorageError(f"{self.path}: {exc}") from None

    def load_or_create(self, name: str) -> Board:
        """Read the board, or start an empty one called `name` when there is no file yet."""
        if not self.exists():
            return Board(name)
        return self.load()
