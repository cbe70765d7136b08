"""Phase 3/4 grounding: the repository's real symbols an issue is most likely about, and their source."""

from __future__ import annotations

import re
import sqlite3
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from diffusellm.pipeline.locate.chunks import is_test_path
from diffusellm.pipeline.locate.lexical import tokenize
from diffusellm.pipeline.paths import UnsafePathError, read_file

if TYPE_CHECKING:
    from diffusellm.pipeline.locate.query import LocateResult

MAX_CANDIDATES = 200
"""At most this many qualnames go into a schema's enum: more makes constrained decoding slow and the
prompt long, and localisation has already put the likely ones first."""
_NAMED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


def approx_tokens(text: str) -> int:
    """Rough token count for prompt budgets: a token is about four characters."""
    return (len(text) + 3) // 4


@dataclass(frozen=True)
class Symbol:
    """A definition of the repository, as the knowledge graph records it."""

    qualname: str
    kind: str
    """module, class, function, method, constant or variable."""
    path: str
    start_line: int
    end_line: int
    signature: str = ""

    @property
    def name(self) -> str:
        """The last part of the qualname."""
        return self.qualname.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Localised:
    """What an issue points at: candidate symbols (best first, ≤ 200), modules, test files, source."""

    symbols: tuple[Symbol, ...]
    modules: tuple[str, ...]
    test_files: tuple[str, ...]
    context: str
    """Packed source of the best candidates, within a token budget, for prompts."""
    words: Mapping[str, int] = field(default_factory=lambda: {})
    """How often each word (lowercased part of a snake_case or CamelCase name) occurs in the names
    and parameters of every definition, tests included: the repository's own spelling."""

    def of_kind(self, *kinds: str) -> list[str]:
        """Qualnames of the candidates of the given kinds, best first."""
        return [s.qualname for s in self.symbols if s.kind in kinds]

    def find(self, qualname: str) -> Symbol | None:
        """The candidate with this qualname."""
        return next((s for s in self.symbols if s.qualname == qualname), None)


def read_symbols(graph_db: Path) -> list[Symbol]:
    """Every module-level or class-level definition in a digested knowledge graph.

    Read straight from the graph's `symbols` table (read-only): `KnowledgeGraph` has no call
    listing all symbols yet.
    """
    conn = sqlite3.connect(f"file:{graph_db}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT qualname, kind, path, start_line, end_line, signature, parent FROM symbols"
            " ORDER BY path, start_line"
        ).fetchall()
    finally:
        conn.close()
    scopes = {str(r[0]) for r in rows if r[1] in ("module", "class")}
    return [
        Symbol(str(q), str(k), str(p), int(s), int(e), str(g))
        for q, k, p, s, e, g, parent in rows
        if k == "module" or str(parent) in scopes
    ]


def _overlap_score(symbol: Symbol, words: Counter[str], named: set[str]) -> float:
    """How much an issue's words point at a symbol: named outright counts most."""
    if symbol.qualname in named or symbol.name in named:
        bonus = 10.0 if len(symbol.name) > 2 else 1.0
    else:
        bonus = 0.0
    own = set(tokenize(symbol.name))
    around = set(tokenize(symbol.qualname)) - own
    return bonus + sum(2.0 for w in own if w in words) + sum(0.5 for w in around if w in words)


def rank_by_overlap(symbols: Sequence[Symbol], text: str) -> list[Symbol]:
    """Symbols ordered by identifier overlap with `text` (stable for ties)."""
    words = Counter(tokenize(text))
    named = set(_NAMED.findall(text))
    scored = [(_overlap_score(s, words, named), i, s) for i, s in enumerate(symbols)]
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [s for _, _, s in scored]


def pack_source(root: Path, symbols: Iterable[Symbol], budget_tokens: int) -> str:
    """The source of the best functions and classes, best first, as much as fits in the budget."""
    packed: list[Symbol] = []
    blocks: list[str] = []
    used = 0
    for sym in symbols:
        if sym.kind not in ("function", "method", "class") or any(_inside(sym, p) for p in packed):
            continue
        try:
            lines = read_file(root, sym.path).decode("utf-8", "replace").splitlines()
        except (OSError, UnsafePathError):
            continue
        block = f"# {sym.path}:{sym.start_line} {sym.qualname}\n"
        block += "\n".join(lines[sym.start_line - 1 : sym.end_line]) + "\n"
        if used + approx_tokens(block) > budget_tokens:
            continue
        packed.append(sym)
        blocks.append(block)
        used += approx_tokens(block)
    return "\n".join(blocks)


def _inside(inner: Symbol, outer: Symbol) -> bool:
    return inner.path == outer.path and outer.start_line <= inner.start_line <= outer.end_line


def _assemble(root: Path, ordered: Sequence[Symbol], all_symbols: Sequence[Symbol], budget: int) -> Localised:
    code = [s for s in ordered if not is_test_path(s.path)]
    chosen = [s for s in code if s.kind != "module"][:MAX_CANDIDATES]
    modules = [s.qualname for s in all_symbols if s.kind == "module" and not is_test_path(s.path)]
    tests = sorted({s.path for s in all_symbols if is_test_path(s.path) and s.kind == "module"})
    return Localised(
        symbols=tuple(chosen),
        modules=tuple(modules[:MAX_CANDIDATES]),
        test_files=tuple(tests),
        context=pack_source(root, chosen, budget),
        words=name_words(all_symbols),
    )


_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")


def words_of(name: str) -> list[str]:
    """The lowercased words of an identifier: `get_HTTPResponse2` → get, http, response."""
    return [w.lower() for w in _WORD.findall(name)]


def name_words(symbols: Iterable[Symbol]) -> dict[str, int]:
    """Word counts over every definition's own name and its parameters' names."""
    counts: Counter[str] = Counter()
    for symbol in symbols:
        counts.update(words_of(symbol.name))
        counts.update(words_of(" ".join(re.findall(r"[A-Za-z_]\w*(?=\s*[:=,)])", symbol.signature))))
    return dict(counts)


def localise_by_overlap(root: Path, graph_db: Path, text: str, *, budget_tokens: int = 1500) -> Localised:
    """Candidates ranked by identifier overlap with the issue text (no embedding model needed)."""
    symbols = read_symbols(graph_db)
    return _assemble(root, rank_by_overlap(symbols, text), symbols, budget_tokens)


def localise_from_locate(
    root: Path, graph_db: Path, text: str, result: LocateResult, *, budget_tokens: int = 1500
) -> Localised:
    """Candidates in the order `diffusellm.pipeline.locate.query` ranked them, then the rest by overlap."""
    symbols = read_symbols(graph_db)
    by_name = {s.qualname: s for s in symbols}
    first = [by_name[f.qualname] for f in result.functions if f.qualname in by_name]
    rest = [s for s in rank_by_overlap(symbols, text) if s not in first]
    return _assemble(root, first + rest, symbols, budget_tokens)
