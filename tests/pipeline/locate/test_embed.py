"""MiniLM embeddings from the shipped model, the static distillation, and the chromadb store."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from diffusellm.pipeline.locate.embed import MiniLMEmbedder, StaticEmbedder, Vectors
from diffusellm.pipeline.locate.index import build_index
from diffusellm.pipeline.locate.store import StoreConfig, dense_query, open_collection

SIMILAR = ("read the configuration file from disk", "load settings from a config file")
OTHER = "draw a red circle on the canvas"


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    embedder = MiniLMEmbedder(threads=2)
    embedder.model()
    return embedder


class Counting:
    """Wraps a real embedder and remembers each batch it was asked to embed."""

    def __init__(self, inner: MiniLMEmbedder) -> None:
        self.inner = inner
        self.batches: list[list[str]] = []

    @property
    def name(self) -> str:
        return self.inner.name

    def embed(self, texts: Sequence[str]) -> Vectors:
        self.batches.append(list(texts))
        return self.inner.embed(texts)

    def count(self) -> int:
        return sum(len(b) for b in self.batches)


def _cos(a: Vectors, i: int, j: int) -> float:
    return float(a[i] @ a[j])


def test_minilm_vectors_are_unit_float32_and_meaningful(minilm: MiniLMEmbedder) -> None:
    vectors = minilm.embed([*SIMILAR, OTHER])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert _cos(vectors, 0, 1) > _cos(vectors, 0, 2) + 0.2
    assert minilm.embed([]).shape == (0, 384)


def test_quantised_minilm_agrees_with_the_float_model(minilm: MiniLMEmbedder) -> None:
    int8 = MiniLMEmbedder(threads=2, quantize=True)
    vectors = int8.embed([*SIMILAR, OTHER])
    assert int8.name != minilm.name
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert _cos(vectors, 0, 1) > _cos(vectors, 0, 2)
    float_vectors = minilm.embed([SIMILAR[0]])
    assert float(vectors[0] @ float_vectors[0]) > 0.9


def test_static_embedder_is_distilled_once_and_reloaded(tmp_path: Path,
                                                        minilm: MiniLMEmbedder) -> None:
    table = tmp_path / "static.npz"
    first = StaticEmbedder(base=minilm, table_path=table)
    texts = ["open the file and read the lines", "read lines from the open file",
             "the red car drove away"]
    vectors = first.embed(texts)
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert _cos(vectors, 0, 1) > _cos(vectors, 0, 2)
    assert not table.exists()  # written on save(), which indexing calls
    first.save()
    assert table.is_file()
    again = StaticEmbedder(base=minilm, table_path=table).embed(texts)
    assert np.allclose(again, vectors, atol=1e-2)  # the table is stored as float16


def _git_repo(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "."], check=True)
    subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@e",
                    "commit", "-qm", "init"], check=True)
    return root


FILES = {
    "app/__init__.py": "",
    "app/config.py": 'def load_config(path):\n    """Read settings from a TOML file."""\n'
                     "    return toml.loads(path.read_text())\n",
    "app/draw.py": "def draw_circle(canvas, radius):\n    canvas.circle(radius, fill='red')\n\n"
                   "def draw_square(canvas, side):\n    canvas.rect(side, side)\n",
}


def test_chroma_round_trip_and_incremental_reindex(tmp_path: Path, minilm: MiniLMEmbedder) -> None:
    repo = _git_repo(tmp_path / "repo", FILES)
    counting = Counting(minilm)
    index = build_index(repo, tmp_path / "index", counting)
    assert index.stats.embedded == counting.count() == len(index.chunks) == 6
    hits = dense_query(index.collection, minilm.embed(["parse the settings file"])[0], 3)
    assert index.chunks[index.position[hits[0][0]]].qualname == "app.config.load_config"
    assert 0.0 < hits[0][1] <= 1.0

    again = build_index(repo, tmp_path / "index", counting)  # nothing changed
    assert again.stats.embedded == 0 and counting.count() == 6
    assert again.collection.count() == 6

    (repo / "app/draw.py").write_text(FILES["app/draw.py"] + "\ndef draw_line(a, b):\n    pass\n")
    (repo / "app/config.py").unlink()
    changed = build_index(repo, tmp_path / "index", counting)
    assert changed.stats.files_chunked == 1
    assert counting.batches[-1][0].startswith("app draw")  # only draw.py's chunks
    assert changed.stats.embedded == 4 and changed.stats.removed == 5
    assert changed.collection.count() == len(changed.chunks) == 5
    assert {c.qualname for c in changed.chunks} == {
        "app", "app.draw", "app.draw.draw_circle", "app.draw.draw_square", "app.draw.draw_line"}


def test_collections_are_kept_apart_per_embedder(tmp_path: Path) -> None:
    config = StoreConfig(path=tmp_path / "chroma")
    a = open_collection(config, "minilm-128")
    b = open_collection(config, "minilm-static-v2")
    a.add(ids=["x"], embeddings=np.ones((1, 384), dtype=np.float32))
    assert a.count() == 1 and b.count() == 0
    assert a.metadata["hnsw:space"] == "cosine"
