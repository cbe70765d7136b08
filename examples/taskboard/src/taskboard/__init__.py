"""taskboard: a tiny task board kept in a JSON file next to your project."""

from .helpers import format_due, parse_due_date, slugify
from .models import Board, BoardError, Task
from .paths import default_board_path, resolve_root
from .service import BoardService
from .storage import JsonStore, StorageError

__version__ = "0.1.0"

__all__ = [
    "Board",
    "BoardError",
    "BoardService",
    "JsonStore",
    "StorageError",
    "Task",
    "default_board_path",
    "format_due",
    "parse_due_date",
    "resolve_root",
    "slugify",
]
