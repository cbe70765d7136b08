"""Duplicate detection: existing functions like a new one, by embedding and by signature trie."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from pydantic import BaseModel

from diffusellm.errors import InputError
from diffusellm.pipeline.locate.chunks import Chunk, chunk_source, embedding_text, is_test_path
from diffusellm.pipeline.locate.embed import Embedder, make_embedder
from diffusellm.pipeline.locate.index import RepoIndex, build_index
from diffusellm.pipeline.locate.store import StoreConfig, dense_query

DENSE_SHARE = 0.7
"""Weight of cosine similarity in the combined score; the signature trie gets the rest."""
_DEF = re.compile(r"^\s*(?:async\s+)?def\s+(\w+)")


class SimilarFunction(BaseModel):
    """An existing function that may already do what a new one is meant to do."""

    path: str
    qualname: str
    start_line: int
    end_line: int
    score: float
    cosine: float
    reasons: list[str]


def probe_chunk(signature: str, body: str) -> Chunk:
    """The new function as a chunk: `body` may be a whole `def` or only the indented body;
    `signature` is `def name(params) -> ret` or just `(params) -> ret`."""
    signature = signature.strip().removesuffix(":")
    if not signature.startswith(("def ", "async def ")):
        signature = f"def new_function{signature if signature.startswith('(') else '()'}"
    source = body if _DEF.match(body) else f"{signature}:\n{textwrap.indent(body.strip(), '    ')}"
    if not source.strip():
        raise InputError("the function to compare is empty", hint="give its signature and body")
    chunks = [c for c in chunk_source("<new>", "new", source.encode()) if c.kind == "function"]
    if not chunks:
        raise InputError("no function definition found in the given signature and body",
                         hint="pass `def name(args):` and its body")
    return chunks[0]


def _trie_scores(index: RepoIndex, probe: Chunk, limit: int) -> dict[str, tuple[float, str]]:
    """Qualname → (trie score, reason) from the other helper's signature trie when present."""
    try:
        from diffusellm.pipeline.understand.trie import SignatureTrie
    except ImportError:
        return {}
    rows = [(c.qualname, c.qualname.rsplit(".", 1)[-1], c.signature)
            for c in index.chunks if c.kind in ("function", "method")]
    trie = SignatureTrie.from_symbols(rows)
    try:
        similar = trie.similar(probe.signature, probe.qualname.rsplit(".", 1)[-1], limit)
    except InputError:
        return {}
    return {q: (s, "same signature" if s >= 0.85 else "signature one edit away")
            for q, s in similar}


def similar_in_index(index: RepoIndex, probe: Chunk, *, top: int = 5,
                     include_tests: bool = False) -> list[SimilarFunction]:
    """Rank the index's functions and methods by cosine to the probe plus signature match."""
    cosines: dict[str, float] = {}
    if index.embedder is not None:  # an index built without embeddings ranks by signature alone
        vector = index.embedder.embed([embedding_text(probe)])[0]
        where = {"kind": {"$in": ["function", "method"]}}
        cosines = {cid: cos for cid, cos in dense_query(index.collection, vector, 4 * top + 20, where)}
    trie = _trie_scores(index, probe, 4 * top)
    by_qualname = {index.chunks[index.position[c]].qualname: c for c in cosines}
    if trie:
        ids_by_qualname = {c.qualname: index.ids[i] for i, c in enumerate(index.chunks)}
        for qualname in trie:
            if qualname in ids_by_qualname:
                by_qualname.setdefault(qualname, ids_by_qualname[qualname])
    hits: list[SimilarFunction] = []
    for qualname, cid in by_qualname.items():
        chunk = index.chunks[index.position[cid]]
        if is_test_path(chunk.path) and not include_tests:
            continue
        cosine = cosines.get(cid, 0.0)
        trie_score, trie_reason = trie.get(qualname, (0.0, ""))
        reasons = [f"embedding cosine {cosine:.2f}"] + ([trie_reason] if trie_reason else [])
        hits.append(SimilarFunction(
            path=chunk.path, qualname=qualname, start_line=chunk.start_line,
            end_line=chunk.end_line, cosine=round(cosine, 4), reasons=reasons,
            score=round(DENSE_SHARE * cosine + (1 - DENSE_SHARE) * trie_score, 4)))
    hits.sort(key=lambda h: -h.score)
    return hits[:top]


def find_similar_functions(signature: str, body: str, *, repo: Path, index_dir: Path,
                           top: int = 5, include_tests: bool = False,
                           embedder: Embedder | None = None,
                           store: StoreConfig | None = None) -> list[SimilarFunction]:
    """Existing functions of `repo` most like the new one (cosine over function chunks,
    combined with the signature trie), best first. Use the same embedder as `locate` on the
    same `index_dir` to share its vectors."""
    chosen = embedder or make_embedder("static", state_dir=index_dir)
    index = build_index(repo.resolve(), index_dir, chosen, store=store)
    return similar_in_index(index, probe_chunk(signature, body), top=top,
                            include_tests=include_tests)

