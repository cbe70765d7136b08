"""Localisation: rank the files and functions an issue is about (BM25 + MiniLM + call graph)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
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
from diffusellm.pipeline.locate.rank import extract_seeds, personalized_pagerank, reciprocal_rank_fusion
from diffusellm.pipeline.locate.store import StoreConfig, dense_query
from diffusellm.pipeline.paths import UnsafePathError, read_file

DEFAULT_EMBEDDER: EmbedderKind = "static"
"""The only embedder that indexes Django (11.7k chunks) in under a minute on 2 cores; choose
`minilm-int8` for better accuracy on smaller repositories (docs/LOCATE.md has the figures)."""
DENSE_WEIGHT: Mapping[str, float] = {"minilm-static-v2": 0.5}
"""The static embedding is a weaker signal than MiniLM (docs/PERFORMANCE.md): it counts half."""
RRF_K = 60.0
SOURCE_K: Mapping[str, float] = {"named in issue": 10.0}
"""What the issue names is ordered on purpose (deepest traceback frame first): keep that order."""
DEPTH = 100
"""How far down each single ranking is read before fusion."""
WEIGHTS: Mapping[str, float] = {
    "named in issue": 1.0, "bm25": 1.0, "dense": 1.0, "graph": 0.5, "holds function": 1.0,
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


def dense_ranking(index: RepoIndex, text: str, limit: int = DEPTH) -> list[int]:
    """Chunk positions nearest to the text's embedding, nearest first."""
    vector = index.embedder.embed([text])[0]
    hits = dense_query(index.collection, vector, limit)
    return [index.position[cid] for cid, _ in hits if cid in index.position]


def graph_ranking(index: RepoIndex, edges: Sequence[Edge], seeds: Mapping[int, float],
                  limit: int = DEPTH) -> list[int]:
    """Chunks by personalized PageRank from the seeds over calls, imports and containment."""
    rank = personalized_pagerank(len(index.chunks), edges, seeds)
    order = np.argsort(-rank, kind="stable")[:limit]
    return [int(i) for i in order if rank[i] > 0]


def collect_signals(index: RepoIndex, text: str, edges: Sequence[Edge]) -> Signals:
    """Run BM25, dense search, seed matching and PageRank (over the forward `edges` and their
    reverses) for one issue text."""
    signals = Signals()
    chunks = index.chunks
    query = tokenize(text)
    bm25 = index.lexical.chunks.ranking(query, DEPTH)
    dense = dense_ranking(index, text)
    signals.named = dict(match_seeds(chunks, extract_seeds(text)))
    seeds: dict[int, float] = {i: 2.0 for i in signals.named}
    for ranking in (bm25, dense):
        for rank, i in enumerate(ranking[:10], start=1):
            seeds[i] = seeds.get(i, 0.0) + 1.0 / rank
    signals.seeds = set(seeds)
    graph = graph_ranking(index, both_ways(edges), seeds)
    signals.chunk_rankings = {
        "named in issue": list(signals.named), "bm25": bm25, "dense": dense, "graph": graph,
    }
    lexical_files = index.lexical.files
    signals.file_rankings = {
        "named in issue": _first_seen([chunks[i].path for i in signals.named]),
        "bm25": [index.lexical.file_paths[i] for i in lexical_files.ranking(query, DEPTH)],
        "dense": _first_seen([chunks[i].path for i in dense]),
        "graph": _first_seen([chunks[i].path for i in graph]),
    }
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
         k: float = RRF_K) -> tuple[list[FileHit], list[FunctionHit]]:
    """Reciprocal-rank fusion of the signals into ranked functions, then files."""
    chunks = index.chunks
    rankings = {
        source: [i for i in ranking
                 if chunks[i].kind != "module" and _keep(chunks[i], include_tests)]
        for source, ranking in signals.chunk_rankings.items()
    }
    links: dict[int, list[int]] = {}
    for src, dst, _ in edges:
        links.setdefault(src, []).append(dst)
    functions: list[FunctionHit] = []
    for item in reciprocal_rank_fusion(rankings, weights, k=k, source_k=SOURCE_K):
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
        for item in reciprocal_rank_fusion(file_rankings, weights, k=k, source_k=SOURCE_K)
    ]
    return files[:top], functions[:top]


def weights_for(embedder_name: str) -> dict[str, float]:
    """Fusion weights for an index made with this embedder."""
    return {**WEIGHTS, "dense": DENSE_WEIGHT.get(embedder_name, WEIGHTS["dense"])}


def search(index: RepoIndex, text: str, *, top: int = 10, include_tests: bool = False,
           edges: Sequence[Edge] | None = None) -> LocateResult:
    """Rank an already built index's files and functions for an issue text."""
    if not text.strip():
        raise InputError("the issue text is empty", hint="give the issue's title and body")
    edges = chunk_edges(index.chunks) if edges is None else edges
    signals = collect_signals(index, text, edges)
    files, functions = fuse(index, signals, edges, top=top, include_tests=include_tests,
                            weights=weights_for(index.embedder.name))
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


def locate(repo: Path, text: str, *, top: int = 10, include_tests: bool = False,
           index_dir: Path, embedder: Embedder | None = None,
           embedder_kind: EmbedderKind = DEFAULT_EMBEDDER, model_dir: Path | None = None,
           store: StoreConfig | None = None, graph_db: Path | None = None,
           threads: int = 2) -> LocateResult:
    """Index `repo` incrementally into `index_dir` and rank its files and functions for `text`.

    Without `embedder`, one of `embedder_kind` is made (`model_dir` keeps the static table,
    shared by all repositories; default `index_dir`). `graph_db` is the digestion knowledge
    graph, used for call edges when it exists; `store` points at a chromadb server instead of
    the folder in `index_dir`."""
    if top < 1:
        raise InputError(f"top must be at least 1, got {top}", hint="ask for --top 10")
    chosen = embedder or make_embedder(embedder_kind, threads=threads,
                                       state_dir=model_dir or index_dir)
    index = build_index(repo.resolve(), index_dir, chosen, store=store)
    return search(index, text, top=top, include_tests=include_tests,
                  edges=graph_edges(index, graph_db))


def result_json(result: LocateResult) -> dict[str, Any]:
    """The JSON shape of `diffusellm locate --json`: files with reasons, functions with lines."""
    return {
        "files": [f.model_dump() for f in result.files],
        "functions": [f.model_dump(exclude={"reasons"}) for f in result.functions],
    }


def locate_command(repo: Path, text_file: Path, top: int, include_tests: bool,
                   state_dir: Path) -> dict[str, Any]:
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
                    graph_db=state.graph_db)
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
