"""The `taskboard` command: parse arguments, run one use case, print the result."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path

import taskboard.paths as paths
from taskboard import helpers

from .models import BoardError
from .service import DEFAULT_BOARD_NAME, BoardService
from .storage import JsonStore, StorageError


def build_parser() -> argparse.ArgumentParser:
    """Return the parser for every subcommand."""
    parser = argparse.ArgumentParser(prog="taskboard", description="A task board in a JSON file.")
    parser.add_argument("-v", "--verbose", action="store_true", help="show slugs and tags")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--file", type=Path, help="board file to use")
    where.add_argument("--root", type=Path, help="use the board of the project holding this path")
    commands = parser.add_subparsers(dest="command", required=True)
    init = commands.add_parser("init", help="create an empty board")
    init.add_argument("--name", default=DEFAULT_BOARD_NAME)
    add = commands.add_parser("add", help="add a task")
    add.add_argument("title")
    add.add_argument("--due", help="YYYY-MM-DD, today, tomorrow, +Nd or +Nw")
    add.add_argument("--tag", action="append", default=[], dest="tags")
    done = commands.add_parser("done", help="mark a task as done")
    done.add_argument("slug")
    listing = commands.add_parser("list", help="show tasks")
    listing.add_argument("--all", action="store_true", help="include finished tasks")
    commands.add_parser("where", help="print the board file in use")
    return parser


def board_path(args: argparse.Namespace, env: Mapping[str, str], cwd: Path) -> Path:
    """Pick the board file from `--file`, `--root`, then the environment and working directory."""
    if args.file is not None:
        return Path(args.file)
    if args.root is not None:
        return paths.default_board_path(paths.resolve_root(Path(args.root)), legacy=False)
    return paths.board_path_from_env(env, cwd)


def run_command(args: argparse.Namespace, service: BoardService) -> list[str]:
    """Run the chosen subcommand and return the lines to print."""
    command: str = args.command
    if command == "init":
        board = service.init(args.name)
        return [f"board {board.name!r} at {service.store.path}"]
    if command == "add":
        task = service.add(args.title, args.due, args.tags)
        return [f"added {task.slug}"]
    if command == "done":
        task = service.complete(args.slug)
        return [f"done {task.slug}"]
    if command == "list":
        return service.listing(include_done=args.all) or ["no tasks"]
    return [str(service.store.path)]


def main(
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    today: date | None = None,
) -> int:
    """Run the command line and return the exit status: 0 on success, 1 on a refused change.

    Verbose listings are asked for with `--verbose` or through `helpers.get_verbose_flag`.
    """
    args = build_parser().parse_args(argv)
    environ: Mapping[str, str] = os.environ if env is None else env
    here = Path.cwd() if cwd is None else cwd
    verbose = bool(args.verbose) or helpers.get_verbose_flag(environ)
    store = JsonStore(board_path(args, environ, here))
    service = BoardService(store, today=today or date.today(), verbose=verbose)
    try:
        lines = run_command(args, service)
    except (BoardError, StorageError, ValueError) as exc:
        print(f"taskboard: error: {exc}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    return 0
