"""Localisation, indexing: chunk changed files, embed only new chunks, rebuild BM25; one call."""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from diffusellm.errors import RepositoryError
from diffusellm.pipeline.locate.chunks import Chunk, chunk_source, embedding_text, git_blob_id
from diffusellm.pipeline.locate.embed import Embedder
from diffusellm.pipeline.locate.lexical import LexicalIndexes, build_lexical
from diffusellm.pipeline.locate.store import (
    StoreConfig,
    SyncStats,
    VectorCache,
    chunk_ids,
    dense_query,
    open_collection,
    sync_collection,
)
from diffusellm.pipeline.paths import UnsafePathError, read_file
from diffusellm.pipeline.project import list_python_files, module_name_for

log = structlog.get_logger(__name__)
VECTORS_NAME = "vectors.sqlite"
CACHE_NAME = "chunks-v2.sqlite"
"""v2: identifiers in source order, string literals whole and all of them."""


@dataclass
class IndexStats:
    """What indexing did and how long each part took (seconds)."""

    files: int = 0
    chunks: int = 0
    files_chunked: int = 0
    embedded: int = 0
    removed: int = 0
    chunk_s: float = 0.0
    embed_s: float = 0.0
    lexical_s: float = 0.0
    total_s: float = 0.0


@dataclass
class RepoIndex:
    """A repository ready to search: its chunks, their vectors in chromadb, and BM25 indexes."""

    root: Path
    chunks: list[Chunk]
    ids: list[str]
    collection: Any
    """None when built without an embedder (no dense signal)."""
    embedder: Embedder | None
    lexical: LexicalIndexes
    stats: IndexStats
    position: dict[str, int] = field(default_factory=lambda: {})

    def __post_init__(self) -> None:
        self.position = {cid: i for i, cid in enumerate(self.ids)}


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE IF NOT EXISTS files"
                 " (path TEXT PRIMARY KEY, blob TEXT NOT NULL, chunks TEXT NOT NULL)")
    return conn


def _chunk_from_row(row: list[Any]) -> Chunk:
    path, qualname, kind, start, end, signature, doc, idents, literals, calls, imports, blob = row
    return Chunk(path, qualname, kind, start, end, signature, doc, tuple(idents), tuple(literals),
                 tuple(calls), tuple((a, b) for a, b in imports), blob)


def load_chunk_cache(path: Path) -> dict[str, list[Chunk]]:
    """Chunks cached by file path from an earlier run (empty when missing or unreadable)."""
    if not path.is_file():
        return {}
    try:
        conn = _connect(path)
        try:
            rows = conn.execute("SELECT path, chunks FROM files").fetchall()
        finally:
            conn.close()
        return {str(p): [_chunk_from_row(r) for r in json.loads(c)] for p, c in rows}
    except (sqlite3.Error, ValueError, TypeError):
        return {}


def save_chunk_cache(path: Path, old: dict[str, list[Chunk]], new: dict[str, list[Chunk]]) -> None:
    """Write the files whose chunks changed and forget the files that are gone."""
    conn = _connect(path)
    try:
        with conn:
            gone = [(p,) for p in old if p not in new]
            conn.executemany("DELETE FROM files WHERE path = ?", gone)
            conn.executemany(
                "INSERT OR REPLACE INTO files (path, blob, chunks) VALUES (?, ?, ?)",
                [(p, rows[0].blob if rows else "", json.dumps([astuple(c) for c in rows]))
                 for p, rows in new.items() if old.get(p) is not rows])
    finally:
        conn.close()


def chunk_repository(
    root: Path, cache: dict[str, list[Chunk]],
) -> tuple[dict[str, list[Chunk]], int]:
    """Chunks of every Python file under `root`, reusing cached chunks of unchanged files (same
    git blob id); also how many files had to be chunked."""
    if not root.is_dir():
        raise RepositoryError(f"{root} is not a folder", hint="pass the repository's root folder")
    out: dict[str, list[Chunk]] = {}
    chunked = 0
    for rel in list_python_files(root):
        if not rel.endswith(".py"):
            continue
        try:
            data = read_file(root, rel)
        except (OSError, UnsafePathError):
            continue
        old = cache.get(rel)
        if old and old[0].blob == git_blob_id(data):
            out[rel] = old
            continue
        out[rel] = chunk_source(rel, module_name_for(root, rel) or Path(rel).stem, data)
        chunked += 1
    return out, chunked


def _by_file(chunks: list[Chunk]) -> dict[str, list[Chunk]]:
    out: dict[str, list[Chunk]] = {}
    for chunk in chunks:
        out.setdefault(chunk.path, []).append(chunk)
    return out


def _synced_store(config: StoreConfig, embedder: Embedder, pairs: list[tuple[Chunk, str]],
                  cache: VectorCache) -> tuple[Any, SyncStats]:
    """The vector collection holding exactly these chunks, checked with one query.

    A local store that chromadb cannot read or query (a worker killed while writing it) is
    deleted and built again from the vector cache, so nothing is embedded twice; a server's
    store is the operator's to mend, so its error is reported."""
    from chromadb.errors import ChromaError

    def sync() -> tuple[Any, SyncStats]:
        collection = open_collection(config, embedder.name)
        synced = sync_collection(collection, [c for c, _ in pairs], [i for _, i in pairs],
                                 embedding_text, embedder, cache)
        _probe(collection)
        return collection, synced

    def failed(exc: Exception) -> RepositoryError:
        return RepositoryError(
            f"the vector store failed: {exc}",
            hint="delete the index folder's chroma/ to rebuild it, or check the chromadb server")

    try:
        return sync()
    except ChromaError as exc:
        if config.host or config.path is None:
            raise failed(exc) from None
        log.warning("locate.store_rebuilt", path=str(config.path), problem=str(exc))
        shutil.rmtree(config.path, ignore_errors=True)
    try:
        return sync()
    except ChromaError as exc:
        raise failed(exc) from None


def _probe(collection: Any) -> None:
    """Query the store with one of its own vectors: a damaged index fails here, not mid-job."""
    got: Any = collection.get(limit=1, include=["embeddings"])
    rows = got.get("embeddings")
    if rows is not None and len(rows):
        dense_query(collection, np.asarray(rows[0], dtype=np.float32), 1)


def build_index(
    root: Path,
    index_dir: Path,
    embedder: Embedder | None,
    *,
    store: StoreConfig | None = None,
    transform: Callable[[list[Chunk]], list[Chunk]] | None = None,
    previous: RepoIndex | None = None,
    embed_only: Callable[[Chunk], bool] | None = None,
) -> RepoIndex:
    """Bring the index in `index_dir` up to date with `root` and return it ready to search.

    Only files whose blob id changed are chunked again and only their chunks embedded.
    `previous` (an index of the same repository and folder still in memory) spares reading the
    chunk cache and tokenizing unchanged chunks again. `transform` rewrites chunks before
    indexing (the benchmark blanks docstrings with it). Only chunks `embed_only` accepts are
    embedded (all by default; none without an embedder); vectors are cached by exact text in
    `index_dir/vectors.sqlite`."""
    started = time.perf_counter()
    stats = IndexStats()
    cache_path = index_dir / CACHE_NAME
    cached = (load_chunk_cache(cache_path) if previous is None or transform is not None
              else _by_file(previous.chunks))
    by_file, stats.files_chunked = chunk_repository(root, cached)
    if stats.files_chunked or by_file.keys() != cached.keys():
        save_chunk_cache(cache_path, cached, by_file)
    chunks = [c for rows in by_file.values() for c in rows]
    if transform is not None:
        chunks = transform(chunks)
    stats.files, stats.chunks = len(by_file), len(chunks)
    stats.chunk_s = time.perf_counter() - started
    ids = chunk_ids(chunks)
    collection = None
    if embedder is not None:
        pairs = [(c, i) for c, i in zip(chunks, ids, strict=True)
                 if embed_only is None or embed_only(c)]
        collection, synced = _synced_store(store or StoreConfig(path=index_dir / "chroma"), embedder,
                                           pairs, VectorCache(index_dir / VECTORS_NAME))
        stats.embedded, stats.removed = synced.embedded, synced.removed
        save = getattr(embedder, "save", None)
        if callable(save):
            save()
    stats.embed_s = time.perf_counter() - started - stats.chunk_s
    lexical = build_lexical(chunks, ids, previous.lexical.tokens if previous else None)
    stats.total_s = time.perf_counter() - started
    stats.lexical_s = stats.total_s - stats.chunk_s - stats.embed_s
    return RepoIndex(root=root, chunks=chunks, ids=ids, collection=collection,
                     embedder=embedder, lexical=lexical, stats=stats)
