"""Knowledge-graph linking: follow re-exports and inheritance between files at query time.

Each file's rows are resolved only through that file's own names (`pkg.helper` when a module
does `from pkg import helper`). `Links` connects such names across files: forward to the
definition (`canonical`) and backward to every name a definition is known by (`aliases`).
"""

from __future__ import annotations

import sqlite3

MAX_STEPS = 12
MAX_ALIASES = 256


class Links:
    """Cross-file name resolution over one graph connection, with per-instance memo tables."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._kinds: dict[str, str | None] = {}

    def kind(self, qualname: str) -> str | None:
        """Kind of the first definition of `qualname`, or None when nothing defines it."""
        if qualname not in self._kinds:
            row = self.conn.execute(
                "SELECT kind FROM symbols WHERE qualname = ? LIMIT 1", (qualname,)).fetchone()
            self._kinds[qualname] = str(row[0]) if row else None
        return self._kinds[qualname]

    def canonical(self, name: str, _depth: int = 0) -> str:
        """The definition a dotted name leads to, through module-level imports and base classes.

        `pkg.helper` (where `pkg/__init__.py` does `from .mod import helper`) → `pkg.mod.helper`;
        `pkg.mod.Child.run` (inherited from `Base`) → `pkg.base.Base.run`. Names leading nowhere
        known come back unchanged.
        """
        seen: set[str] = set()
        while name not in seen and len(seen) < MAX_STEPS:
            seen.add(name)
            if self.kind(name) is not None:
                return name
            step = self._through_import(name)
            if step is None and _depth < 4:
                step = self._through_bases(name, _depth)
            if step is None:
                return name
            name = step
        return name

    def _through_import(self, name: str) -> str | None:
        """Rewrite the longest prefix `module.local` that is a module-level import binding."""
        parts = name.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            row = self.conn.execute(
                "SELECT target FROM imports WHERE importer = ? AND scope = importer AND local = ?"
                " LIMIT 1", (".".join(parts[:cut]), parts[cut])).fetchone()
            if row is not None:
                rewritten = ".".join([str(row[0]), *parts[cut + 1:]])
                if rewritten != name:
                    return rewritten
        return None

    def _through_bases(self, name: str, depth: int) -> str | None:
        """`Cls.attr` not defined on `Cls`: the first base class (depth-first) that defines it."""
        owner, _, attr = name.rpartition(".")
        if not owner or self.kind(owner) != "class":
            return None
        bases = self.conn.execute(
            "SELECT target FROM bases WHERE cls = ? AND target IS NOT NULL", (owner,)).fetchall()
        for (base,) in bases:
            found = self.canonical(f"{self.canonical(str(base), depth + 1)}.{attr}", depth + 1)
            if self.kind(found) is not None:
                return found
        return None

    def aliases(self, qualname: str) -> set[str]:
        """Every name `qualname` is known by: itself, re-exports of it (or of its class), the
        same method reached through subclasses, and a class for its `__init__`."""
        found = {qualname}
        frontier = [qualname]
        owner, _, attr = qualname.rpartition(".")
        if attr == "__init__" and owner:
            found.add(owner)
            frontier.append(owner)
        while frontier and len(found) < MAX_ALIASES:
            name = frontier.pop()
            for alias in self._import_aliases(name) | self._inherited_names(name):
                if alias not in found:
                    found.add(alias)
                    frontier.append(alias)
        return found

    def _import_aliases(self, name: str) -> set[str]:
        """`importer.local.rest` for each module-level import binding `name` or its class.

        Imports of an enclosing package or module are left out: `from django.contrib import
        admin` makes `X.admin.options.f` a valid spelling in hundreds of modules, yet calls are
        resolved through the importing file's own names and never come out spelled that way.
        """
        parts = name.split(".")
        found: set[str] = set()
        for cut in range(len(parts), 0, -1):
            prefix = ".".join(parts[:cut])
            if cut < len(parts) and self.kind(prefix) != "class":
                continue
            rows = self.conn.execute(
                "SELECT importer, local FROM imports WHERE target = ? AND scope = importer"
                " AND local != '' AND (name IS NOT NULL OR alias IS NOT NULL)", (prefix,))
            for importer, local in rows:
                found.add(".".join([str(importer), str(local), *parts[cut:]]))
        return found

    def _inherited_names(self, name: str) -> set[str]:
        """`Sub.attr` for each direct subclass `Sub` of `name`'s class that does not override it."""
        owner, _, attr = name.rpartition(".")
        if not owner or self.kind(owner) != "class":
            return set()
        spellings = sorted(self._import_aliases(owner) | {owner})
        marks = ",".join("?" * len(spellings))
        rows = self.conn.execute(
            f"SELECT DISTINCT cls FROM bases WHERE target IN ({marks})", spellings)
        return {f"{sub}.{attr}" for (sub,) in rows if self.kind(f"{sub}.{attr}") is None}
