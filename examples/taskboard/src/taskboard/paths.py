"""Where boards live: finding the project root and the board file inside it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

BOARD_DIR = ".taskboard"
BOARD_FILE = "board.json"
BOARD_ENV = "TASKBOARD_FILE"
ROOT_MARKERS = (BOARD_DIR, ".git", "pyproject.toml")


def resolve_root(start: Path) -> Path:
    """Find the project a path belongs to.

    Walks up from `start` and returns the first directory that holds one of `ROOT_MARKERS`,
    checked in that order at each level. Without any marker, `start` itself is the root.

    Args:
        start: A file or directory inside the project.

    Returns:
        The project root, as an absolute path.
    """
    here = start.resolve()
    if here.is_file():
        here = here.parent
    for candidate in (here, *here.parents):
        if any((candidate / marker).exists() for marker in ROOT_MARKERS):
            return candidate
    return here


def default_board_path(root: Path, legacy: bool = False) -> Path:
    """Return where the board of a project is kept.

    Args:
        root: The project root, as returned by `resolve_root`.
        legacy: Ignored. Boards used to live in `taskboard.json` at the root; they have all
            moved to `.taskboard/board.json`.

    Returns:
        The path of the board file.
    """
    return root / BOARD_DIR / BOARD_FILE


def board_path_from_env(env: Mapping[str, str], cwd: Path) -> Path:
    """Return the board file: `TASKBOARD_FILE` when set, else the default one of the project.

    Args:
        env: The environment to read.
        cwd: The directory the command runs in.

    Returns:
        The path of the board file.
    """
    explicit = env.get(BOARD_ENV, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    return default_board_path(resolve_root(cwd), False)
