"""Localisation, step 4: seeds from the issue text, personalized PageRank, rank fusion."""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

_FRAME = re.compile(r'File "([^"]+)", line (\d+)(?:, in ([\w<>.]+))?')
_PATH = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w.-]+\.py)(?::(\d+))?\b")
_ANY_PATH = re.compile(
    r"(?<![\w/\\.:-])((?:[A-Za-z]:)?[/\\]?(?:[\w.-]+[/\\])*[\w.-]+\.py)(?::(\d+))?(?::? in ([\w<>.]+))?")
"""Also absolute and Windows paths, and pytest's `pkg/mod.py:352: in func` frames."""
_BACKTICK = re.compile(r"`{1,3}([^`\n]+)`{1,3}")
_DOTTED = re.compile(r"\b[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+\b")
_CALLED = re.compile(r"\b([A-Za-z_]\w*)\(")
_CODE_WORD = re.compile(
    r"\b(?:[a-z0-9]+_[a-z0-9_]+|_[a-z]\w*|[a-z]+[A-Z]\w*|[A-Z][a-z0-9]+[A-Z]\w*)\b")
_ERROR = re.compile(r"\b(\w*(?:Error|Exception|Warning))\b(?::\s*(.+))?")


@dataclass(frozen=True)
class Frame:
    """One `File "x.py", line N, in func` line of a traceback."""

    path: str
    line: int
    func: str


@dataclass
class IssueSeeds:
    """What an issue names outright: traceback frames, file paths, code names, error types."""

    frames: list[Frame] = field(default_factory=lambda: [])
    paths: list[str] = field(default_factory=lambda: [])
    names: list[str] = field(default_factory=lambda: [])
    errors: list[str] = field(default_factory=lambda: [])


def _add(items: list[str], value: str) -> None:
    value = value.strip().strip("().:,;'\"")
    if value and value not in items:
        items.append(value)


def _frames(text: str, written_paths: bool) -> list[Frame]:
    """Traceback frames in text order: `File "x.py", line N, in f`, and with `written_paths`
    every `path.py:N` (pytest's `path.py:352: in func`, log lines, absolute paths)."""
    found = [(m.start(), Frame(m[1], int(m[2]), m[3] or "")) for m in _FRAME.finditer(text)]
    if written_paths:
        found += [(m.start(), Frame(m[1], int(m[2]), m[3] or ""))
                  for m in _ANY_PATH.finditer(text) if m[2]]
    return [f for _, f in sorted(found, key=lambda p: p[0])]


def extract_seeds(text: str, *, written_paths: bool = True) -> IssueSeeds:
    """Pull frames (deepest first), paths, dotted/backticked/called/snake_case names and errors.
    `written_paths` also reads pytest-style frames and absolute paths."""
    seeds = IssueSeeds()
    seeds.frames = list(reversed(_frames(text, written_paths)))
    for m in (_ANY_PATH if written_paths else _PATH).finditer(text):
        _add(seeds.paths, m[1])
    for m in _BACKTICK.finditer(text):
        for inner in _DOTTED.findall(m[1]) or re.findall(r"[A-Za-z_]\w*", m[1])[:1]:
            if not inner.endswith(".py"):
                _add(seeds.names, inner)
    for pattern in (_DOTTED, _CALLED, _CODE_WORD):
        for m in pattern.finditer(text):
            name = m[1] if pattern is _CALLED else m[0]
            if not name.endswith(".py") and not _is_path_piece(text, m.start()):
                _add(seeds.names, name)
    for m in _ERROR.finditer(text):
        _add(seeds.errors, m[1])
    return seeds


def _is_path_piece(text: str, start: int) -> bool:
    return start > 0 and text[start - 1] in "/\\"


def personalized_pagerank(
    size: int,
    edges: Sequence[tuple[int, int, float]],
    seeds: Mapping[int, float],
    *,
    restart: float = 0.25,
    iterations: int = 40,
) -> NDArray[np.float64]:
    """Stationary visit probabilities of a walk that follows weighted edges and, with
    probability `restart` (and from nodes without out-edges), jumps back to the seeds."""
    if size == 0 or not seeds:
        return np.zeros(size)
    from scipy.sparse import csr_matrix

    src = np.array([e[0] for e in edges], dtype=np.int64)
    dst = np.array([e[1] for e in edges], dtype=np.int64)
    weight = np.array([e[2] for e in edges], dtype=np.float64)
    out_weight = np.bincount(src, weights=weight, minlength=size) if len(edges) else np.zeros(size)
    scaled = weight / np.maximum(out_weight[src], 1e-12)
    transition = csr_matrix((scaled, (dst, src)), shape=(size, size))
    jump = np.zeros(size)
    for node, value in seeds.items():
        jump[node] += value
    jump /= jump.sum()
    dangling = out_weight == 0
    rank = jump.copy()
    for _ in range(iterations):
        leaked = rank[dangling].sum()
        rank = (1 - restart) * (transition @ rank) + (restart + (1 - restart) * leaked) * jump
    return rank


@dataclass
class Fused:
    """One fused item: its RRF score and why it ranks (`bm25 #2`, `dense #5`, ...)."""

    key: Hashable
    score: float
    reasons: list[str]


def reciprocal_rank_fusion(
    rankings: Mapping[str, Sequence[Hashable]],
    weights: Mapping[str, float],
    *,
    k: float = 60.0,
    source_k: Mapping[str, float] | None = None,
    shown: int = 20,
) -> list[Fused]:
    """Sum of weight / (k + rank) over the rankings an item appears in, best first; an item's
    reasons name each ranking where it placed within the first `shown`. `source_k` gives some
    rankings their own, usually smaller, k: their order then counts for more."""
    fused: dict[Hashable, Fused] = {}
    for source, ranking in rankings.items():
        weight = weights.get(source, 1.0)
        own_k = (source_k or {}).get(source, k)
        for rank, key in enumerate(ranking, start=1):
            item = fused.setdefault(key, Fused(key, 0.0, []))
            item.score += weight / (own_k + rank)
            if rank <= shown:
                item.reasons.append(f"{source} #{rank}")
    return sorted(fused.values(), key=lambda f: -f.score)
