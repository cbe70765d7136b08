"""Digestion storage: the knowledge graph's SQLite schema and the batched writes that fill it."""

from __future__ import annotations

import sqlite3
from collections.abc import Generator, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from diffusellm.errors import RepositoryError
from diffusellm.pipeline.understand.digest.parse import ParsedFile

SCHEMA_VERSION = "1"
FileStatus = Literal["ok", "error", "binary", "non_utf8", "unreadable"]

_TABLES = ("files", "symbols", "imports", "calls", "refs", "bases")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, blob_id TEXT NOT NULL, module TEXT NOT NULL, status TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '', dynamic INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS files_module ON files(module);
CREATE TABLE IF NOT EXISTS symbols (
    path TEXT NOT NULL, qualname TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL,
    start_line INTEGER NOT NULL, end_line INTEGER NOT NULL, signature TEXT NOT NULL,
    docstring TEXT NOT NULL, parent TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS symbols_qualname ON symbols(qualname);
CREATE INDEX IF NOT EXISTS symbols_name ON symbols(name);
CREATE INDEX IF NOT EXISTS symbols_path ON symbols(path);
CREATE TABLE IF NOT EXISTS imports (
    path TEXT NOT NULL, importer TEXT NOT NULL, scope TEXT NOT NULL, module TEXT NOT NULL,
    name TEXT, alias TEXT, local TEXT NOT NULL, target TEXT NOT NULL, line INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS imports_module ON imports(module);
CREATE INDEX IF NOT EXISTS imports_target ON imports(target);
CREATE INDEX IF NOT EXISTS imports_binding ON imports(importer, local);
CREATE INDEX IF NOT EXISTS imports_path ON imports(path);
CREATE TABLE IF NOT EXISTS calls (
    path TEXT NOT NULL, scope TEXT NOT NULL, text TEXT NOT NULL, target TEXT,
    line INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS calls_target ON calls(target);
CREATE INDEX IF NOT EXISTS calls_scope ON calls(scope);
CREATE INDEX IF NOT EXISTS calls_path ON calls(path);
CREATE TABLE IF NOT EXISTS refs (
    path TEXT NOT NULL, scope TEXT NOT NULL, target TEXT NOT NULL, line INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS refs_target ON refs(target);
CREATE INDEX IF NOT EXISTS refs_path ON refs(path);
CREATE TABLE IF NOT EXISTS bases (
    path TEXT NOT NULL, cls TEXT NOT NULL, text TEXT NOT NULL, target TEXT);
CREATE INDEX IF NOT EXISTS bases_cls ON bases(cls);
CREATE INDEX IF NOT EXISTS bases_target ON bases(target);
CREATE INDEX IF NOT EXISTS bases_path ON bases(path);
"""


@dataclass(frozen=True, slots=True)
class FileResult:
    """One file's digestion outcome: its identity, status and (when it parsed) what it holds."""

    path: str
    blob_id: str
    module: str
    status: FileStatus
    message: str = ""
    parsed: ParsedFile | None = None


def connect(db_path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the graph database in WAL mode with an up-to-date schema.

    A database written by another schema version is emptied: it is a cache, rebuilt by digesting.
    """
    try:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(db_path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_SCHEMA)
    except (OSError, sqlite3.Error) as exc:
        raise RepositoryError(
            f"cannot open the knowledge graph at {db_path}: {exc}",
            hint="check the state folder is writable, or delete the file to rebuild it",
        ) from None
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    if row is None or row[0] != SCHEMA_VERSION:
        with transaction(conn):
            for table in _TABLES:
                conn.execute(f"DELETE FROM {table}")
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Generator[sqlite3.Connection]:
    """BEGIN ... COMMIT around a block, ROLLBACK if it raises."""
    conn.execute("BEGIN")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def known_files(conn: sqlite3.Connection) -> dict[str, tuple[str, str]]:
    """Files already digested: path → (blob id, module name)."""
    rows = conn.execute("SELECT path, blob_id, module FROM files")
    return {path: (blob, module) for path, blob, module in rows}


def _delete(conn: sqlite3.Connection, paths: Sequence[str]) -> None:
    keys = [(p,) for p in paths]
    for table in _TABLES:
        conn.executemany(f"DELETE FROM {table} WHERE path = ?", keys)


def remove_files(conn: sqlite3.Connection, paths: Sequence[str]) -> None:
    """Forget files that are gone from the repository, in one transaction."""
    if paths:
        with transaction(conn):
            _delete(conn, paths)


def store_batch(conn: sqlite3.Connection, results: Iterable[FileResult]) -> None:
    """Replace the rows of a batch of files, in one transaction."""
    batch = list(results)
    with transaction(conn):
        _delete(conn, [r.path for r in batch])
        conn.executemany(
            "INSERT INTO files VALUES (?, ?, ?, ?, ?, ?)",
            [(r.path, r.blob_id, r.module, r.status, r.message,
              int(r.parsed.dynamic) if r.parsed else 0) for r in batch])
        for result in batch:
            if result.parsed is not None:
                _insert_parsed(conn, result.path, result.parsed)


def _insert_parsed(conn: sqlite3.Connection, path: str, parsed: ParsedFile) -> None:
    conn.executemany("INSERT INTO symbols VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     [(path, *s) for s in parsed.symbols])
    conn.executemany("INSERT INTO imports VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     [(path, parsed.module, *i) for i in parsed.imports])
    conn.executemany("INSERT INTO calls VALUES (?, ?, ?, ?, ?)",
                     [(path, *c) for c in parsed.calls])
    conn.executemany("INSERT INTO refs VALUES (?, ?, ?, ?)",
                     [(path, *r) for r in parsed.references])
    conn.executemany("INSERT INTO bases VALUES (?, ?, ?, ?)",
                     [(path, *b) for b in parsed.bases])


def count_rows(conn: sqlite3.Connection, table: str) -> int:
    """Rows in one of the graph's tables."""
    if table not in _TABLES:
        raise ValueError(table)
    row = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
    return int(row[0])


def status_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """How many files have each status."""
    return {status: int(n) for status, n in
            conn.execute("SELECT status, COUNT(*) FROM files GROUP BY status")}


def problems(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """(path, message) of every file that parsed with syntax errors or could not be read."""
    rows = conn.execute(
        "SELECT path, message FROM files WHERE status IN ('error', 'unreadable') ORDER BY path")
    return [(str(p), str(m)) for p, m in rows]
