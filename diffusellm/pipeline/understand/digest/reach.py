"""Test selection from the knowledge graph: which test files can reach the changed code.

The walk goes backwards from the targets. A symbol is reached by the scopes that call or
reference it (under any alias); a method also by whoever uses its class, since calls on
instances are invisible statically. A changed module is reached, in addition, through the
import graph (an importer runs its code at import time). The answer is None, meaning "run
everything", whenever the graph cannot vouch for the selection.
"""

from __future__ import annotations

import posixpath
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from diffusellm.pipeline.understand.digest.links import Links

MAX_DEPTH = 5
MAX_NODES = 3000
"""A walk reaching more symbols than this gives up: running everything is cheaper and safer."""


@dataclass(frozen=True, slots=True)
class _Node:
    name: str
    whole_module: bool
    """A changed module: its importers are reached, not only the users of its names."""


def is_test_file(path: str) -> bool:
    """test_*.py, *_test.py, or any other module under a tests/ folder (helpers included)."""
    folder, name = posixpath.split(path)
    if name in ("conftest.py", "__init__.py") or not name.endswith(".py"):
        return False
    return is_collected_test(path) or "tests" in folder.split("/")


def is_collected_test(path: str) -> bool:
    """A file pytest collects by default: test_*.py or *_test.py."""
    name = posixpath.basename(path)
    return name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py"))


def tests_reaching(conn: sqlite3.Connection, qualnames: Sequence[str],
                   changed_files: Sequence[str], *, max_depth: int = MAX_DEPTH) -> list[str] | None:
    """Test files that reach any target within `max_depth` steps, or None when uncertain.

    A qualname not yet defined (the change creates it) stands for its module or class.
    Uncertain: a target the graph does not know (a qualname in no digested module, a changed
    file that is not Python), references still unexplored at the depth bound, no
    collectable test file reached, or a test file importing modules by computed name.
    """
    files = {str(p): (str(m), bool(d)) for p, m, d in
             conn.execute("SELECT path, module, dynamic FROM files")}
    changed = [posixpath.normpath(p.replace("\\", "/")).removeprefix("./") for p in changed_files]
    if any(path not in files and not path.endswith(".py") for path in changed):
        return None  # data or config files: what reads them is invisible here
    # A Python file the graph lacks is new: nothing digested can import it yet.
    starts = {_Node(files[path][0], whole_module=True) for path in changed if path in files}
    links = Links(conn)
    for qualname in qualnames:
        name = _known_container(links, links.canonical(qualname))
        if name is None:
            return None
        starts.add(_Node(name, whole_module=False))
    if not starts and not changed:
        return None
    reached = _Walk(links).run(starts, max_depth)
    if reached is None:
        return None
    tests = _select(reached | set(changed), files)
    if not any(is_collected_test(t) for t in tests):
        return None
    if any(dynamic and is_test_file(p) and p not in tests for p, (_, dynamic) in files.items()):
        return None
    return sorted(tests)


def _known_container(links: Links, name: str) -> str | None:
    """`name` if defined; for a name the change creates, the nearest module or class holding it."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        candidate = ".".join(parts[:cut])
        kind = links.kind(candidate)
        if kind is not None and (cut == len(parts) or kind in ("module", "class")):
            return candidate
    return None


def _select(reached: set[str], files: dict[str, tuple[str, bool]]) -> set[str]:
    """Reached test files, plus every test under the folder of a reached conftest.py."""
    tests = {p for p in reached if is_test_file(p)}
    for path in reached:
        if posixpath.basename(path) == "conftest.py":
            folder = posixpath.dirname(path)
            tests.update(p for p in files if is_test_file(p)
                         and (not folder or p.startswith(folder + "/")))
    return tests


class _Walk:
    """One backwards walk over the graph."""

    def __init__(self, links: Links) -> None:
        self.links = links
        self.conn = links.conn

    def run(self, starts: set[_Node], max_depth: int) -> set[str] | None:
        """Files reached from `starts`; None when references remain past `max_depth` or the
        walk grows past MAX_NODES symbols."""
        seen: set[_Node] = set()
        reached: set[str] = set()
        frontier = starts
        for _ in range(max_depth):
            frontier = self._expand(frontier) - seen
            seen |= frontier
            if len(seen) > MAX_NODES:
                return None
            found, frontier = self._step(frontier)
            reached |= found
            frontier -= seen
            if not frontier:
                return reached
        found, _ = self._step(self._expand(frontier) - seen)
        return None if found - reached else reached

    def _expand(self, nodes: set[_Node]) -> set[_Node]:
        """Add every alias of each node, and the class of each method."""
        out: set[_Node] = set()
        for node in nodes:
            out.update(_Node(a, node.whole_module) for a in self.links.aliases(node.name))
            if self.links.kind(node.name) == "method":
                out.add(_Node(node.name.rpartition(".")[0], whole_module=False))
        return out

    def _step(self, nodes: set[_Node]) -> tuple[set[str], set[_Node]]:
        """One step back: the files using each node, and the scopes using it as new nodes."""
        files: set[str] = set()
        nxt: set[_Node] = set()
        for node in nodes:
            files.update(self._defining_files(node.name))
            low, high = node.name, node.name + "/"  # `x` and `x.*`: '/' sorts right after '.'
            for table in ("calls", "refs"):
                rows = self.conn.execute(
                    f"SELECT path, scope FROM {table} WHERE target >= ? AND target < ?",
                    (low, high))
                for path, scope in rows:
                    files.add(str(path))
                    nxt.add(_Node(str(scope), whole_module=False))
            rows = self.conn.execute(
                "SELECT path, scope, importer FROM imports WHERE (target >= ?1 AND target < ?2)"
                " OR (module >= ?1 AND module < ?2)", (low, high))
            for path, scope, importer in rows:
                files.add(str(path))
                if node.whole_module:
                    nxt.add(_Node(str(scope), whole_module=scope == importer))
        return files, nxt

    def _defining_files(self, name: str) -> set[str]:
        rows = self.conn.execute("SELECT DISTINCT path FROM symbols WHERE qualname = ?", (name,))
        return {str(p) for (p,) in rows}
