"""Localisation, vector store: chunk vectors in chromadb, keyed by path, qualname and blob id."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from diffusellm.errors import ConfigError
from diffusellm.pipeline.locate.chunks import Chunk, is_test_path
from diffusellm.pipeline.locate.embed import Embedder, Vectors

_NAME_BAD = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class StoreConfig:
    """Where vectors live: a chromadb folder (default), or a chromadb server when `host` is set."""

    path: Path | None = None
    host: str | None = None
    port: int = 8000
    collection_prefix: str = "chunks"
    """Prefix of the collection name; give each repository its own when sharing a server."""


@dataclass(frozen=True)
class SyncStats:
    """What one synchronisation did: texts embedded, stale vectors removed, vectors kept."""

    embedded: int
    removed: int
    kept: int


def open_collection(config: StoreConfig, embedder_name: str) -> Any:
    """The chromadb collection for this embedder's vectors (cosine space, no embedding function:
    vectors are always passed in, so chromadb never fetches a model of its own)."""
    try:
        import chromadb
        from chromadb.config import Settings
    except ImportError as exc:
        raise ConfigError(f"chromadb is not installed: {exc}",
                          hint="pip install chromadb") from None
    settings = Settings(anonymized_telemetry=False)
    client: Any
    if config.host:
        client = chromadb.HttpClient(host=config.host, port=config.port, settings=settings)
    elif config.path is not None:
        config.path.mkdir(parents=True, exist_ok=True)
        client = chromadb.PersistentClient(path=str(config.path), settings=settings)
    else:
        raise ConfigError("no vector store configured",
                          hint="give an index folder, or a chromadb host and port")
    name = _NAME_BAD.sub("-", f"{config.collection_prefix}-{embedder_name}").strip("-._")[:500]
    return client.get_or_create_collection(
        name=name, metadata={"hnsw:space": "cosine"}, embedding_function=None,
    )


def chunk_ids(chunks: Sequence[Chunk]) -> list[str]:
    """Stable ids `path::qualname::blob`; a name defined twice in a file gets `#2`, `#3`, ..."""
    seen: dict[str, int] = {}
    ids: list[str] = []
    for chunk in chunks:
        base = f"{chunk.path}::{chunk.qualname}::{chunk.blob}"
        seen[base] = seen.get(base, 0) + 1
        ids.append(base if seen[base] == 1 else f"{base}#{seen[base]}")
    return ids


def _metadata(chunk: Chunk) -> dict[str, str | int | bool]:
    return {
        "path": chunk.path, "qualname": chunk.qualname, "kind": chunk.kind,
        "start_line": chunk.start_line, "end_line": chunk.end_line,
        "test": is_test_path(chunk.path),
    }


@dataclass
class VectorCache:
    """Vectors by embedder and exact text (SQLite): a chunk whose file changed but whose own text
    did not is never embedded again, and neither is the same text at another commit."""

    path: Path
    hits: int = 0

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path)
        conn.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vec BLOB NOT NULL)")
        return conn

    @staticmethod
    def key(embedder_name: str, text: str) -> str:
        """The cache key of a text embedded by this embedder."""
        data = f"{embedder_name}\0{text}".encode("utf-8", "surrogatepass")
        return hashlib.sha1(data, usedforsecurity=False).hexdigest()

    def embed(self, embedder: Embedder, texts: Sequence[str]) -> Vectors:
        """Vectors of the texts: cached ones read back, the others embedded and stored."""
        keys = [self.key(embedder.name, t) for t in texts]
        conn = self._connect()
        try:
            found: dict[str, bytes] = {}
            for start in range(0, len(keys), 900):
                part = keys[start:start + 900]
                marks = ",".join("?" * len(part))
                found.update(conn.execute(
                    f"SELECT key, vec FROM vectors WHERE key IN ({marks})", part).fetchall())
            missing = [j for j, k in enumerate(keys) if k not in found]
            fresh = embedder.embed([texts[j] for j in missing]) if missing else None
            if fresh is not None:
                with conn:
                    conn.executemany("INSERT OR REPLACE INTO vectors (key, vec) VALUES (?, ?)",
                                     [(keys[j], fresh[n].tobytes()) for n, j in enumerate(missing)])
                found.update((keys[j], fresh[n].tobytes()) for n, j in enumerate(missing))
        finally:
            conn.close()
        self.hits += len(keys) - len(missing)
        return np.stack([np.frombuffer(found[k], dtype=np.float32) for k in keys]) if keys else (
            np.zeros((0, 0), dtype=np.float32))


def sync_collection(
    collection: Any,
    chunks: Sequence[Chunk],
    ids: Sequence[str],
    text_of: Callable[[Chunk], str],
    embedder: Embedder,
    cache: VectorCache | None = None,
) -> SyncStats:
    """Make the collection hold exactly these chunks: embed only ids it lacks (through `cache`
    when given), drop the rest."""
    existing: set[str] = set(collection.get(include=[])["ids"])
    wanted = dict(zip(ids, chunks, strict=True))
    new = [i for i in ids if i not in existing]
    stale = sorted(existing.difference(wanted))
    batch = 4096
    for start in range(0, len(stale), batch):
        collection.delete(ids=stale[start:start + batch])
    for start in range(0, len(new), batch):
        part = new[start:start + batch]
        texts = [text_of(wanted[i]) for i in part]
        vectors = cache.embed(embedder, texts) if cache else embedder.embed(texts)
        collection.add(ids=part, embeddings=vectors,
                       metadatas=[_metadata(wanted[i]) for i in part])
    return SyncStats(embedded=len(new), removed=len(stale), kept=len(ids) - len(new))


def dense_query(
    collection: Any,
    vector: Vectors,
    limit: int,
    where: Mapping[str, Any] | None = None,
) -> list[tuple[str, float]]:
    """Ids of the nearest chunks and their cosine similarity, nearest first."""
    count: int = collection.count()
    if count == 0 or limit <= 0:
        return []
    result: Any = collection.query(
        query_embeddings=np.asarray(vector, dtype=np.float32).reshape(1, -1),
        n_results=min(limit, count), where=dict(where) if where else None,
        include=["distances"],
    )
    ids: list[str] = result["ids"][0]
    distances: list[float] = result["distances"][0]
    return [(i, 1.0 - float(d)) for i, d in zip(ids, distances, strict=True)]
