"""Localisation: rank the files and functions an issue is about (BM25 + MiniLM + call graph)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, Field

from diffusellm.errors import InputError
from diffusellm.pipeline.locate.chunks import Chunk, is_test_path
from diffusellm.pipeline.locate.embed import Embedder, EmbedderKind, make_embedder
from diffusellm.pipeline.locate.graph import (
    CallGraph,
    Edge,
    both_ways,
    chunk_edges,
    knowledge_graph_edges,
    match_seeds,
)
from diffusellm.pipeline.locate.index import RepoIndex, build_index
from diffusellm.pipeline.locate.lexical import tokenize
from diffusellm.pipeline.locate.literals import literal_ranking
from diffusellm.pipeline.locate.rank import extract_seeds, personalized_pagerank, reciprocal_rank_fusion
from diffusellm.pipeline.locate.scope import own_code
from diffusellm.pipeline.locate.store import StoreConfig, dense_query
from diffusellm.pipeline.paths import UnsafePathError, read_file
from diffusellm.pipeline.project import list_python_files
from diffusellm.pipeline.settings import LocateSettings

DENSE_WEIGHT: Mapping[str, float] = {"minilm-static-v2": 0.5}
"""The static embedding is a weaker signal than MiniLM (docs/PERFORMANCE.md): it counts half."""
NAMED_K = 10.0
"""What the issue names is ordered on purpose (deepest traceback frame first): keep that order,
with a constant no larger than this."""
WEIGHTS: Mapping[str, float] = {
    "named in issue": 1.0, "bm25": 1.0, "dense": 1.0, "graph": 0.5, "holds function": 1.0,
    "literal": 1.0,
}


class FileHit(BaseModel):
    """A ranked file and why it ranks."""

    path: str
    score: float
    reasons: list[str]


class FunctionHit(BaseModel):
    """A ranked function, method or class."""

    path: str
    qualname: str
    start_line: int
    end_line: int
    score: float
    reasons: list[str] = Field(default_factory=lambda: [])


class LocateResult(BaseModel):
    """Where an issue most likely points, best first."""

    repo: str
    files: list[FileHit]
    functions: list[FunctionHit]


@dataclass
class Signals:
    """The single rankings (chunk positions, file paths) that fusion combines."""

    chunk_rankings: dict[str, list[int]] = field(default_factory=lambda: {})
    file_rankings: dict[str, list[str]] = field(default_factory=lambda: {})
    named: dict[int, str] = field(default_factory=lambda: {})
    seeds: set[int] = field(default_factory=lambda: set())


def _first_seen(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


def in_scope(paths: Sequence[str], options: LocateSettings, include_tests: bool) -> set[str]:
    """The paths ranked at all: the project's own code (and tests when asked), or every path
    when the own-package filter is off (then tests are dropped after fusion, as before)."""
    if not options.own_package:
        return set(paths)
    kept = own_code(paths)
    return kept | {p for p in paths if is_test_path(p)} if include_tests else kept


def dense_ranking(index: RepoIndex, text: str, limit: int, allowed: NDArray[np.bool_]) -> list[int]:
    """Allowed chunk positions nearest to the text's embedding, nearest first."""
    if index.embedder is None or index.collection is None:
        return []
    vector = index.embedder.embed([text])[0]
    hits = dense_query(index.collection, vector, limit * 2)
    found = [index.position[cid] for cid, _ in hits if cid in index.position]
    return [i for i in found if allowed[i]][:limit]


def graph_ranking(index: RepoIndex, edges: Sequence[Edge], seeds: Mapping[int, float],
                  limit: int, allowed: NDArray[np.bool_]) -> list[int]:
    """Allowed chunks by personalized PageRank from the seeds over calls, imports and containment."""
    rank = personalized_pagerank(len(index.chunks), edges, seeds) * allowed
    order = np.argsort(-rank, kind="stable")[:limit]
    return [int(i) for i in order if rank[i] > 0]


def _best_per_file(chunks: Sequence[Chunk], scores: NDArray[np.float32], limit: int) -> list[str]:
    """Files ranked by their best chunk's score."""
    best: dict[str, float] = {}
    for i in np.flatnonzero(scores > 0):
        path = chunks[int(i)].path
        best[path] = max(best.get(path, 0.0), float(scores[i]))
    return sorted(best, key=lambda p: -best[p])[:limit]


def _top(scores: NDArray[np.float32], limit: int) -> list[int]:
    order = np.argsort(-scores, kind="stable")[:limit]
    return [int(i) for i in order if scores[i] > 0]


def lexical_rankings(index: RepoIndex, text: str, allowed: NDArray[np.bool_],
                     scope: set[str], options: LocateSettings) -> tuple[list[int], list[str]]:
    """BM25 chunk ranking and file ranking (by best chunk, or over whole files), in scope."""
    query = tokenize(text)
    if options.unique_query_words:
        query = list(dict.fromkeys(query))
    scores = index.lexical.chunks.scores(query) * allowed
    if options.function_bm25:
        return _top(scores, options.depth), _best_per_file(index.chunks, scores, options.depth)
    paths = index.lexical.file_paths
    file_scores = index.lexical.files.scores(query) * np.array([p in scope for p in paths])
    return _top(scores, options.depth), [paths[i] for i in _top(file_scores, options.depth)]


def collect_signals(index: RepoIndex, text: str, edges: Sequence[Edge], *,
                    options: LocateSettings | None = None, include_tests: bool = False) -> Signals:
    """Run BM25, dense search, seed matching, literal matching and PageRank (over the forward
    `edges` and their reverses) for one issue text, each over the chunks in scope."""
    options = options or LocateSettings()
    signals = Signals()
    chunks = index.chunks
    scope = in_scope(_first_seen([c.path for c in chunks]), options, include_tests)
    allowed = np.array([c.path in scope for c in chunks], dtype=np.bool_)
    bm25, bm25_files = lexical_rankings(index, text, allowed, scope, options)
    dense = dense_ranking(index, text, options.depth, allowed)
    named = match_seeds(chunks, extract_seeds(text, written_paths=options.frames))
    signals.named = {i: why for i, why in named if allowed[i]}
    seeds: dict[int, float] = {i: 2.0 for i in signals.named}
    for ranking in (bm25, dense):
        for rank, i in enumerate(ranking[:10], start=1):
            seeds[i] = seeds.get(i, 0.0) + 1.0 / rank
    signals.seeds = set(seeds)
    signals.chunk_rankings = {"named in issue": list(signals.named), "bm25": bm25, "dense": dense}
    if options.literals:
        signals.chunk_rankings["literal"] = literal_ranking(
            chunks, [int(i) for i in np.flatnonzero(allowed)], text, options.depth)
    if options.graph:
        signals.chunk_rankings["graph"] = graph_ranking(index, both_ways(edges), seeds,
                                                        options.depth, allowed)
    signals.file_rankings = {"bm25": bm25_files} | {
        source: _first_seen([chunks[i].path for i in ranking])
        for source, ranking in signals.chunk_rankings.items() if source != "bm25"}
    return signals


def _keep(chunk: Chunk, include_tests: bool) -> bool:
    return include_tests or not is_test_path(chunk.path)


def _link(index: RepoIndex, near: int, i: int, outgoing: bool) -> str:
    """How chunk `near` (a seed) relates to chunk `i`, in words."""
    other, this = index.chunks[near], index.chunks[i]
    if this.qualname.startswith(other.qualname + "."):
        return f"member of {other.qualname}"
    if other.qualname.startswith(this.qualname + "."):
        return f"contains {other.qualname}"
    if other.kind == "module" or this.kind == "module":
        return f"{'imported by' if outgoing else 'imports'} {other.qualname}"
    return f"{'called by' if outgoing else 'calls'} {other.qualname}"


_LINK_ORDER = ("called by", "calls", "member of", "contains", "imported by", "imports")


def _graph_reason(index: RepoIndex, links: Mapping[int, list[int]], i: int,
                  seeds: set[int]) -> str | None:
    """How chunk `i` is tied to a seed in the graph (links hold forward edges); calls are
    named before containment and imports."""
    found = [_link(index, j, i, outgoing=True) for j in seeds if i in links.get(j, ())]
    found += [_link(index, j, i, outgoing=False) for j in links.get(i, ()) if j in seeds]
    found.sort(key=lambda r: next(n for n, p in enumerate(_LINK_ORDER) if r.startswith(p)))
    return found[0] if found else None


def fuse(index: RepoIndex, signals: Signals, edges: Sequence[Edge], *, top: int,
         include_tests: bool, weights: Mapping[str, float] = WEIGHTS,
         k: float = 4.0) -> tuple[list[FileHit], list[FunctionHit]]:
    """Reciprocal-rank fusion of the signals into ranked functions, then files."""
    chunks = index.chunks
    source_k = {"named in issue": min(k, NAMED_K)}
    rankings = {
        source: [i for i in ranking
                 if chunks[i].kind != "module" and _keep(chunks[i], include_tests)]
        for source, ranking in signals.chunk_rankings.items()
    }
    links: dict[int, list[int]] = {}
    for src, dst, _ in edges:
        links.setdefault(src, []).append(dst)
    functions: list[FunctionHit] = []
    for item in reciprocal_rank_fusion(rankings, weights, k=k, source_k=source_k):
        i = int(str(item.key))
        chunk = chunks[i]
        reasons = [signals.named[i] if r.startswith("named") else r for r in item.reasons]
        if any(r.startswith("graph") for r in reasons):
            extra = _graph_reason(index, links, i, signals.seeds - {i})
            reasons += [extra] if extra else []
        functions.append(FunctionHit(path=chunk.path, qualname=chunk.qualname,
                                     start_line=chunk.start_line, end_line=chunk.end_line,
                                     score=round(item.score, 6), reasons=reasons))
    file_rankings = {s: [p for p in r if include_tests or not is_test_path(p)]
                     for s, r in signals.file_rankings.items()}
    file_rankings["holds function"] = _first_seen([f.path for f in functions])
    files = [
        FileHit(path=str(item.key), score=round(item.score, 6),
                reasons=["named in issue" if r.startswith("named") else r for r in item.reasons])
        for item in reciprocal_rank_fusion(file_rankings, weights, k=k, source_k=source_k)
    ]
    return files[:top], functions[:top]


def weights_for(embedder_name: str | None) -> dict[str, float]:
    """Fusion weights for an index made with this embedder."""
    return {**WEIGHTS, "dense": DENSE_WEIGHT.get(embedder_name or "", WEIGHTS["dense"])}


def search(index: RepoIndex, text: str, *, top: int = 10, include_tests: bool = False,
           edges: Sequence[Edge] | None = None,
           options: LocateSettings | None = None) -> LocateResult:
    """Rank an already built index's files and functions for an issue text."""
    if not text.strip():
        raise InputError("the issue text is empty", hint="give the issue's title and body")
    options = options or LocateSettings()
    edges = chunk_edges(index.chunks) if edges is None else edges
    signals = collect_signals(index, text, edges, options=options, include_tests=include_tests)
    files, functions = fuse(index, signals, edges, top=top, include_tests=include_tests,
                            weights=weights_for(index.embedder.name if index.embedder else None),
                            k=options.rrf_k)
    return LocateResult(repo=str(index.root), files=files, functions=functions)


def graph_edges(index: RepoIndex, graph_db: Path | None) -> list[Edge]:
    """Call/import edges from the digestion knowledge graph when `graph_db` exists, otherwise
    read from the chunks themselves."""
    if graph_db is not None and graph_db.is_file():
        from diffusellm.pipeline.understand.graph import KnowledgeGraph

        graph: CallGraph
        with KnowledgeGraph(graph_db) as graph:
            return knowledge_graph_edges(index.chunks, graph)
    return chunk_edges(index.chunks)


def embedder_kind_for(repo: Path, options: LocateSettings) -> EmbedderKind | None:
    """The embedder the settings name; `auto` is MiniLM while the project's own code has at most
    `minilm_max_files` Python files, the static embedding above that; None for `none`."""
    if options.embedder == "none":
        return None
    if options.embedder != "auto":
        return options.embedder
    files = [p for p in list_python_files(repo) if p.endswith(".py")]
    own = own_code(files) if options.own_package else files
    return "minilm" if len(own) <= options.minilm_max_files else "static"


def locate(repo: Path, text: str, *, top: int = 10, include_tests: bool = False,
           index_dir: Path, embedder: Embedder | None = None,
           options: LocateSettings | None = None, model_dir: Path | None = None,
           store: StoreConfig | None = None, graph_db: Path | None = None,
           threads: int = 2) -> LocateResult:
    """Index `repo` incrementally into `index_dir` and rank its files and functions for `text`.

    Without `embedder`, the one `options.embedder` names is made (`model_dir` keeps the static
    table, shared by all repositories; default `index_dir`). `graph_db` is the digestion
    knowledge graph, used for call edges when it exists; `store` points at a chromadb server
    instead of the folder in `index_dir`."""
    if top < 1:
        raise InputError(f"top must be at least 1, got {top}", hint="ask for --top 10")
    options = options or LocateSettings()
    root = repo.resolve()
    kind = embedder_kind_for(root, options) if embedder is None else None
    chosen = embedder or (make_embedder(kind, threads=threads, state_dir=model_dir or index_dir)
                          if kind else None)
    scope = in_scope(_first_seen(list_python_files(root)), options, include_tests)
    index = build_index(root, index_dir, chosen, store=store,
                        embed_only=(lambda c: c.path in scope) if options.own_package else None)
    return search(index, text, top=top, include_tests=include_tests,
                  edges=graph_edges(index, graph_db), options=options)


def result_json(result: LocateResult) -> dict[str, Any]:
    """The JSON shape of `diffusellm locate --json`: files with reasons, functions with lines."""
    return {
        "files": [f.model_dump() for f in result.files],
        "functions": [f.model_dump(exclude={"reasons"}) for f in result.functions],
    }


def locate_command(repo: Path, text_file: Path, top: int, include_tests: bool,
                   state_dir: Path, options: LocateSettings | None = None) -> dict[str, Any]:
    """`diffusellm locate`: read the issue text, locate in the repository's state folder."""
    from diffusellm.state import repo_state

    try:
        text = text_file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read the issue text {text_file}: {exc.strerror}",
                         hint="pass a readable UTF-8 text file with --text-file") from None
    state = repo_state(state_dir, repo)
    result = locate(repo, text, top=top, include_tests=include_tests,
                    index_dir=state.root / "locate", model_dir=state_dir / "models",
                    graph_db=state.graph_db, options=options)
    return result_json(result)


def approx_tokens(text: str) -> int:
    """Rough token count for prompt budgets: a token is about four characters."""
    return (len(text) + 3) // 4


def _source_block(root: Path, hit: FunctionHit) -> str:
    try:
        lines = read_file(root, hit.path).decode("utf-8", "replace").splitlines()
    except (OSError, UnsafePathError):
        return ""
    body = "\n".join(lines[hit.start_line - 1:hit.end_line])
    return f"# {hit.path}:{hit.start_line}-{hit.end_line} {hit.qualname}\n{body}\n"


def pack_context(result: LocateResult, budget_tokens: int) -> str:
    """The top functions' source, best first, as much as fits in `budget_tokens`. A block that
    does not fit is skipped for smaller ones after it; a block nested in a packed one is
    skipped, and a class packed after its methods takes their place."""
    root = Path(result.repo)
    packed: list[tuple[FunctionHit, str]] = []
    for hit in result.functions:
        if any(_within(hit, other) for other, _ in packed):
            continue
        block = _source_block(root, hit)
        inner = [(h, b) for h, b in packed if _within(h, hit)]
        used = sum(approx_tokens(b) for _, b in packed) - sum(approx_tokens(b) for _, b in inner)
        if not block or used + approx_tokens(block) > budget_tokens:
            continue
        at = packed.index(inner[0]) if inner else len(packed)
        packed = [p for p in packed[:at] if p not in inner] + [(hit, block)] + [
            p for p in packed[at:] if p not in inner]
    if not packed and result.functions and budget_tokens > 0:
        return _source_block(root, result.functions[0])[: budget_tokens * 4]
    return "".join(b for _, b in packed)


def _within(inner: FunctionHit, outer: FunctionHit) -> bool:
    return (inner.path == outer.path and outer.start_line <= inner.start_line
            and inner.end_line <= outer.end_line)
