"""Phase 2 queries: the knowledge graph (symbols, imports, calls) that digestion wrote to SQLite.

Backs test selection, duplicate detection, `diffusellm query-graph` and the app's /query_graph.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from diffusellm.errors import RepositoryError
from diffusellm.pipeline.understand.digest import reach as digest_reach
from diffusellm.pipeline.understand.digest.links import Links
from diffusellm.pipeline.understand.digest.store import SCHEMA_VERSION

_SYMBOL_COLUMNS = "qualname, kind, path, start_line, end_line, signature"


@dataclass(frozen=True, slots=True)
class SymbolRow:
    """A definition as the graph records it."""

    qualname: str
    kind: str
    path: str
    start_line: int
    end_line: int
    signature: str


class KnowledgeGraph:
    """Read access to a digested repository's graph. Names are dotted qualnames throughout."""

    def __init__(self, db_path: Path) -> None:
        if not db_path.is_file():
            raise RepositoryError(
                f"no knowledge graph at {db_path}",
                hint="digest the repository first; the graph is written by the digestion step",
            )
        self.db_path = db_path
        self._conn = sqlite3.connect(db_path)
        if self._schema() != SCHEMA_VERSION:
            self._conn.close()
            raise RepositoryError(
                f"{db_path} is not a knowledge graph of this version",
                hint="digest the repository again to rebuild it",
            )

    def _schema(self) -> str | None:
        try:
            if self._conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table'"
                                  " AND name = 'meta'").fetchone() is None:
                return None
            row = self._conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        except sqlite3.DatabaseError:
            return None  # not an SQLite file at all
        return str(row[0]) if row else None

    def close(self) -> None:
        """Release the database."""
        self._conn.close()

    def __enter__(self) -> KnowledgeGraph:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def definitions(self, name: str) -> list[SymbolRow]:
        """Definitions whose qualname or bare name is `name`.

        Failing that: the definition a re-exported name leads to (`pkg.helper` →
        `pkg.mod.helper`), then qualnames ending in `.name` (`Class.method`).
        """
        rows = self._symbols("qualname = ? OR name = ?", (name, name))
        if not rows:
            target = Links(self._conn).canonical(name)
            rows = self._symbols("qualname = ?", (target,)) if target != name else []
        if not rows and "." in name:
            suffix = "." + name
            rows = self._symbols("substr(qualname, -?) = ?", (len(suffix), suffix))
        return rows

    def callers(self, qualname: str) -> list[SymbolRow]:
        """Functions, methods, class bodies and modules whose code calls `qualname`.

        Calls through any alias count: re-exports, subclasses that inherit a method, and the
        class itself for its `__init__`.
        """
        links = Links(self._conn)
        names = sorted(links.aliases(links.canonical(qualname)))
        marks = ",".join("?" * len(names))
        scopes = [str(s) for (s,) in self._conn.execute(
            f"SELECT DISTINCT scope FROM calls WHERE target IN ({marks})", names)]
        if not scopes:
            return []
        marks = ",".join("?" * len(scopes))
        return self._symbols(f"qualname IN ({marks})", scopes)

    def callees(self, qualname: str) -> list[str]:
        """Qualnames `qualname`'s own body calls, in first-call order, followed to definitions.

        Calls the file's names cannot resolve (builtins, methods of local objects) are left
        out; calls into other packages keep their dotted name (`os.path.join`).
        """
        links = Links(self._conn)
        target = links.canonical(qualname)
        rows = self._conn.execute(
            "SELECT target FROM calls WHERE scope = ? AND target IS NOT NULL ORDER BY line",
            (target,))
        found: dict[str, None] = {}
        for (callee,) in rows.fetchall():
            found.setdefault(links.canonical(str(callee)), None)
        return list(found)

    def importers(self, module: str) -> list[str]:
        """Paths of the files that import `module` (`import m`, `from m import x`,
        `from package import m`)."""
        rows = self._conn.execute(
            "SELECT DISTINCT path FROM imports WHERE module = ? OR target = ? ORDER BY path",
            (module, module))
        return [str(p) for (p,) in rows]

    def tests_reaching(self, qualnames: Sequence[str], changed_files: Sequence[str], *,
                       max_depth: int = digest_reach.MAX_DEPTH) -> list[str] | None:
        """Test files reaching any of the symbols or changed files through calls, references
        or imports within `max_depth` steps; None when the whole suite should run instead
        (see `digest_reach.tests_reaching` for what counts as uncertain)."""
        return digest_reach.tests_reaching(self._conn, qualnames, changed_files,
                                           max_depth=max_depth)

    def signatures(self) -> list[tuple[str, str, str]]:
        """(qualname, name, signature) of every function and method, for the signature trie."""
        rows = self._conn.execute(
            "SELECT qualname, name, signature FROM symbols"
            " WHERE kind IN ('function', 'method') ORDER BY qualname")
        return [(str(q), str(n), str(s)) for q, n, s in rows]

    def _symbols(self, where: str, params: Sequence[object]) -> list[SymbolRow]:
        rows = self._conn.execute(
            f"SELECT {_SYMBOL_COLUMNS} FROM symbols WHERE {where} ORDER BY path, start_line",
            tuple(params))
        return [SymbolRow(str(q), str(k), str(p), int(s), int(e), str(g))
                for q, k, p, s, e, g in rows]
