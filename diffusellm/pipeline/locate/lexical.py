"""Localisation, step 3: BM25 over chunks and files, identifiers split into words, paths kept."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from diffusellm.pipeline.locate.chunks import Chunk, split_identifier

_WORDS = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+")
_EXTRA_STOPWORDS = frozenset({
    "self", "cls", "def", "return", "none", "true", "false", "py", "init", "args", "kwargs",
})


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN) | _EXTRA_STOPWORDS


def stem(word: str) -> str:
    """A light English suffix stripper, so `converts`/`converted`/`converting` meet `convert`."""
    if len(word) > 5 and word.endswith("ies"):
        return word[:-3] + "y"
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            return word[: -len(suffix)]
    return word


@lru_cache(maxsize=200_000)
def _word_tokens(word: str) -> tuple[str, ...]:
    stop = _stopwords()
    lower = word.lower().strip("_")
    parts = [p.lower() for p in split_identifier(word)]
    whole = [lower] if len(parts) > 1 and lower not in stop else []
    return (*whole, *(stem(p) for p in parts if len(p) > 1 and p not in stop))


def tokenize(text: str) -> list[str]:
    """Words of code or prose: identifiers are kept whole and also split on case and underscores;
    everything lower-cased and stemmed; English stop words and 1-letter words dropped."""
    return [token for word in _WORDS.findall(text) for token in _word_tokens(word)]


def chunk_words(chunk: Chunk) -> str:
    """All text a chunk offers to lexical search: names, path, signature, docs, code, literals."""
    return "\n".join((
        chunk.path.replace("/", " "), chunk.qualname, chunk.signature, chunk.docstring,
        " ".join(chunk.identifiers), " ".join(chunk.literals),
    ))


@dataclass
class LexicalIndex:
    """A BM25 index over documents given as token lists; scores come back for every document."""

    model: Any
    size: int

    @classmethod
    def build(cls, docs: Sequence[Sequence[str]]) -> LexicalIndex:
        """Index token lists (an empty document is allowed and never matches)."""
        import bm25s

        model: Any = bm25s.BM25(k1=1.2, b=0.75)
        model.index([list(d) or [""] for d in docs], show_progress=False)
        return cls(model=model, size=len(docs))

    def scores(self, query: Sequence[str]) -> NDArray[np.float32]:
        """BM25 score of each document for the query tokens (zeros when no token is known)."""
        known = [t for t in query if t in self.model.vocab_dict]
        if not known or self.size == 0:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self.model.get_scores(known), dtype=np.float32)

    def ranking(self, query: Sequence[str], limit: int) -> list[int]:
        """Indexes of the best `limit` documents with a positive score, best first."""
        scores = self.scores(query)
        order = np.argsort(-scores, kind="stable")[:limit]
        return [int(i) for i in order if scores[i] > 0]


@dataclass
class LexicalIndexes:
    """BM25 over chunks and over whole files (a file's document is all its chunks' words)."""

    chunks: LexicalIndex
    files: LexicalIndex
    file_paths: list[str]
    tokens: dict[str, list[str]]
    """Each chunk's tokens by chunk id, for reuse when the index is rebuilt."""


def build_lexical(chunks: Sequence[Chunk], ids: Sequence[str],
                  reuse: Mapping[str, list[str]] | None = None) -> LexicalIndexes:
    """Build both indexes from chunks (files in first-seen order); tokens of chunk ids found in
    `reuse` are taken from there instead of tokenizing again."""
    reuse = reuse or {}
    tokens: dict[str, list[str]] = {}
    file_docs: dict[str, list[str]] = {}
    for cid, chunk in zip(ids, chunks, strict=True):
        words = reuse.get(cid)
        if words is None:
            words = tokenize(chunk_words(chunk))
        tokens[cid] = words
        file_docs.setdefault(chunk.path, []).extend(words)
    paths = list(file_docs)
    return LexicalIndexes(
        chunks=LexicalIndex.build([tokens[cid] for cid in ids]),
        files=LexicalIndex.build([file_docs[p] for p in paths]),
        file_paths=paths,
        tokens=tokens,
    )
