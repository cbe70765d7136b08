"""Phase 2, digestion: parse every Python file of a repository into the SQLite knowledge graph.

Incremental by git blob id: a file whose blob (and module name) is unchanged since the last run
is not read again; rows of removed files are deleted. Files with syntax errors keep what
tree-sitter could parse around the broken regions (status `error`, reported in `parse_errors`);
binary (NUL bytes) and non-UTF-8 files are recorded with their blob id but not parsed.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from diffusellm.pipeline.paths import UnsafePathError, read_file
from diffusellm.pipeline.understand.digest import store
from diffusellm.pipeline.understand.digest.git import module_names, python_blobs
from diffusellm.pipeline.understand.digest.parse import parse_python

BATCH_FILES = 200
"""Files written per SQLite transaction."""

Progress = Callable[[int, int], None]


class ParseProblem(BaseModel):
    """A file that could not be parsed cleanly, and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    message: str


class DigestReport(BaseModel):
    """What a digestion run did, and what the graph now holds.

    `files_parsed` and `files_reused` describe this run's work; `parse_errors`, the skipped
    counts and the row counts describe the whole repository as now digested (reused files too).
    """

    model_config = ConfigDict(extra="forbid")

    files_total: int
    files_parsed: int
    """Files read and parsed this run (syntax errors included)."""
    files_reused: int
    """Files whose blob id and module were unchanged, so their rows were kept."""
    files_removed: int
    parse_errors: list[ParseProblem]
    skipped_binary: int
    skipped_non_utf8: int
    symbols: int
    imports: int
    calls: int
    seconds: float


def digest_repository(repo: Path, db_path: Path, *,
                      progress: Progress | None = None) -> DigestReport:
    """Bring the knowledge graph at `db_path` up to date with the Python files of `repo`.

    `progress(done, total)` is called after each batch with the files processed so far out of
    those that needed reading this run.
    """
    started = time.perf_counter()
    repo = repo.resolve()
    blobs = python_blobs(repo)
    modules = module_names(repo, blobs)
    conn = store.connect(db_path)
    try:
        known = store.known_files(conn)
        todo = [p for p in blobs if known.get(p) != (blobs[p], modules[p])]
        removed = [p for p in known if p not in blobs]
        store.remove_files(conn, removed)
        done = parsed = 0
        for batch in _batches(todo, BATCH_FILES):
            results = [read_and_parse(repo, p, blobs[p], modules[p]) for p in batch]
            store.store_batch(conn, results)
            parsed += sum(1 for r in results if r.parsed is not None)
            done += len(batch)
            if progress is not None:
                progress(done, len(todo))
        report = _report(conn, len(blobs), parsed, len(blobs) - len(todo), len(removed))
    finally:
        conn.close()
    return report.model_copy(update={"seconds": round(time.perf_counter() - started, 3)})


def _report(conn: sqlite3.Connection, total: int, parsed: int, reused: int,
            removed: int) -> DigestReport:
    statuses = store.status_counts(conn)
    return DigestReport(
        files_total=total,
        files_parsed=parsed,
        files_reused=reused,
        files_removed=removed,
        parse_errors=[ParseProblem(path=p, message=m) for p, m in store.problems(conn)],
        skipped_binary=statuses.get("binary", 0),
        skipped_non_utf8=statuses.get("non_utf8", 0),
        symbols=store.count_rows(conn, "symbols"),
        imports=store.count_rows(conn, "imports"),
        calls=store.count_rows(conn, "calls"),
        seconds=0.0,
    )


def read_and_parse(repo: Path, path: str, blob: str, module: str) -> store.FileResult:
    """Read one file and parse it; unreadable, binary and non-UTF-8 files come back unparsed."""
    try:
        data = read_file(repo, path)
    except OSError as exc:
        return store.FileResult(path, blob, module, "unreadable", f"cannot read: {exc.strerror}")
    except UnsafePathError as exc:
        return store.FileResult(path, blob, module, "unreadable", exc.message)
    if b"\0" in data:
        return store.FileResult(path, blob, module, "binary", "contains NUL bytes")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return store.FileResult(path, blob, module, "non_utf8", f"not UTF-8 at byte {exc.start}")
    parsed = parse_python(data, module, is_package=path.rsplit("/", 1)[-1] == "__init__.py")
    if parsed.errors:
        return store.FileResult(path, blob, module, "error", "; ".join(parsed.errors), parsed)
    return store.FileResult(path, blob, module, "ok", "", parsed)


def _batches(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]

