"""Localisation, graph signal: call/import/containment edges between chunks, and issue seeds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Protocol

from diffusellm.pipeline.locate.chunks import Chunk
from diffusellm.pipeline.locate.rank import IssueSeeds

Edge = tuple[int, int, float]
MAX_NAME_CANDIDATES = 3
"""A callee resolved by bare name alone links to at most this many definitions."""


class CallGraph(Protocol):
    """The part of the knowledge graph (`diffusellm.pipeline.understand.graph.KnowledgeGraph`) used here."""

    def callees(self, qualname: str) -> list[str]: ...

    def importers(self, module: str) -> list[str]: ...


@dataclass
class ChunkTable:
    """Lookups over a chunk list: by qualname, by bare name, module chunk of each file."""

    chunks: Sequence[Chunk]
    by_qualname: dict[str, int] = field(default_factory=lambda: {})
    by_name: dict[str, list[int]] = field(default_factory=lambda: {})
    module_of: dict[str, int] = field(default_factory=lambda: {})
    by_path: dict[str, list[int]] = field(default_factory=lambda: {})

    def __post_init__(self) -> None:
        for i, chunk in enumerate(self.chunks):
            self.by_qualname.setdefault(chunk.qualname, i)
            self.by_path.setdefault(chunk.path, []).append(i)
            if chunk.kind == "module":
                self.module_of[chunk.path] = i
            else:
                self.by_name.setdefault(chunk.qualname.rsplit(".", 1)[-1], []).append(i)

    def by_bare_name(self, name: str, limit: int = MAX_NAME_CANDIDATES) -> list[int]:
        """Definitions with this last name, or none when there are more than `limit`."""
        found = self.by_name.get(name, [])
        return found if len(found) <= limit else []


def _resolve_call(table: ChunkTable, chunk: Chunk, imports: dict[str, str],
                  written: str) -> list[tuple[int, float]]:
    module = table.chunks[table.module_of[chunk.path]].qualname
    head, _, last = written.rpartition(".")
    if not head:
        target = imports.get(written, f"{module}.{written}")
        if target in table.by_qualname:
            return [(table.by_qualname[target], 1.0)]
    elif head in ("self", "cls") and chunk.kind == "method":
        owner = chunk.qualname.rsplit(".", 2)[0]
        if f"{owner}.{last}" in table.by_qualname:
            return [(table.by_qualname[f"{owner}.{last}"], 1.0)]
    elif head in imports and f"{imports[head]}.{last}" in table.by_qualname:
        return [(table.by_qualname[f"{imports[head]}.{last}"], 1.0)]
    found = table.by_bare_name(last)
    return [(i, 0.5 / len(found)) for i in found]


def chunk_edges(chunks: Sequence[Chunk]) -> list[Edge]:
    """Edges read from the chunks alone: calls (resolved through the file's imports, `self.`,
    the module's own names, then unique bare names), imports, and containment."""
    table = ChunkTable(chunks)
    edges: list[Edge] = []
    file_imports = {c.path: dict(c.imports) for c in chunks if c.kind == "module"}
    for i, chunk in enumerate(chunks):
        imports = file_imports.get(chunk.path, {})
        for written in chunk.calls:
            edges.extend((i, j, w) for j, w in _resolve_call(table, chunk, imports, written)
                         if j != i)
        if chunk.kind == "module":
            edges.extend(_import_edges(table, i, chunk))
        else:
            parent = table.by_qualname.get(chunk.qualname.rsplit(".", 1)[0])
            if parent is not None:
                edges.append((parent, i, 0.3))
    return edges


def _import_edges(table: ChunkTable, i: int, chunk: Chunk) -> list[Edge]:
    out: list[Edge] = []
    for _, target in chunk.imports:
        j = table.by_qualname.get(target)
        if j is None:
            j = table.by_qualname.get(target.rsplit(".", 1)[0])
        if j is not None and j != i:
            out.append((i, j, 0.5))
    return out


def knowledge_graph_edges(chunks: Sequence[Chunk], graph: CallGraph) -> list[Edge]:
    """Edges from the digestion knowledge graph: its resolved calls and importers, plus
    containment from the chunks."""
    table = ChunkTable(chunks)
    edges: list[Edge] = []
    for i, chunk in enumerate(chunks):
        if chunk.kind == "module":
            for path in graph.importers(chunk.qualname):
                j = table.module_of.get(path)
                if j is not None and j != i:
                    edges.append((j, i, 0.5))
            continue
        for callee in graph.callees(chunk.qualname):
            j = table.by_qualname.get(callee)
            if j is not None and j != i:
                edges.append((i, j, 1.0))
        parent = table.by_qualname.get(chunk.qualname.rsplit(".", 1)[0])
        if parent is not None:
            edges.append((parent, i, 0.3))
    return edges


def both_ways(edges: Sequence[Edge], back: float = 0.5) -> list[Edge]:
    """Each edge plus its reverse at `back` times the weight (callers matter as well)."""
    return [*edges, *((d, s, w * back) for s, d, w in edges)]


def _repo_path_for(table: ChunkTable, written: str) -> str | None:
    """The repository file a path in the issue means: the one sharing the most trailing path
    parts with it (`/venv/.../shop/pricing.py` is `src/shop/pricing.py`); all of a short
    path's parts must match, and a tie means the path is ambiguous."""
    parts = PurePosixPath(written.replace("\\", "/")).parts
    need = min(2, len(parts))
    best: list[str] = []
    best_common = 0
    for path in table.module_of:
        common = 0
        for mine, theirs in zip(reversed(PurePosixPath(path).parts), reversed(parts),
                                strict=False):
            if mine != theirs:
                break
            common += 1
        if common >= need and common > best_common:
            best, best_common = [path], common
        elif common >= need and common == best_common:
            best.append(path)
    return best[0] if len(best) == 1 else None


def _innermost(table: ChunkTable, path: str, line: int, func: str) -> int:
    """The deepest chunk of `path` holding `line`; by function name when the line is outside."""
    holding = [i for i in table.by_path[path] if table.chunks[i].kind != "module"
               and table.chunks[i].start_line <= line <= table.chunks[i].end_line]
    if holding:
        return max(holding, key=lambda i: table.chunks[i].start_line)
    named = [i for i in table.by_path[path]
             if func and table.chunks[i].qualname.endswith("." + func)]
    return named[0] if named else table.module_of[path]


def match_seeds(chunks: Sequence[Chunk], seeds: IssueSeeds) -> list[tuple[int, str]]:
    """Chunks the issue names, strongest first: traceback frames (deepest first), then names."""
    table = ChunkTable(chunks)
    found: dict[int, str] = {}
    for frame in seeds.frames:
        path = _repo_path_for(table, frame.path)
        if path is not None:
            i = _innermost(table, path, frame.line, frame.func)
            found.setdefault(i, f"in traceback at {path}:{frame.line}")
    for name in seeds.names:
        hits = [table.by_qualname[name]] if name in table.by_qualname else [
            i for i in table.by_bare_name(name.rsplit(".", 1)[-1], limit=8)
            if ("." + table.chunks[i].qualname).endswith("." + name)]
        if len(hits) <= MAX_NAME_CANDIDATES:
            for i in hits:
                found.setdefault(i, f"named in issue ({name})")
    for written in seeds.paths:
        path = _repo_path_for(table, written)
        if path is not None:
            found.setdefault(table.module_of[path], f"path named in issue ({written})")
    return list(found.items())
