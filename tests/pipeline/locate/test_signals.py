"""Each localisation signal on small repositories written here: scope, best-function BM25, words
counted once, frames, literal matching, fusion constant, text-keyed vector cache."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from diffusellm.errors import RepositoryError
from diffusellm.pipeline.locate.chunks import chunk_source
from diffusellm.pipeline.locate.embed import DIM, Vectors, normalise
from diffusellm.pipeline.locate.graph import chunk_edges
from diffusellm.pipeline.locate.index import build_index
from diffusellm.pipeline.locate.query import collect_signals, embedder_kind_for, search
from diffusellm.pipeline.locate.rank import reciprocal_rank_fusion
from diffusellm.pipeline.locate.scope import own_code
from diffusellm.pipeline.locate.store import StoreConfig, VectorCache
from diffusellm.pipeline.settings import LocateSettings

OFF = LocateSettings(embedder="none")


def _git_repo(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "."], check=True)
    return root


def _signals(root: Path, text: str, options: LocateSettings = OFF) -> dict[str, list[str]]:
    index = build_index(root, root.parent / f"idx-{root.name}", None)
    signals = collect_signals(index, text, chunk_edges(index.chunks), options=options)
    return {s: [index.chunks[i].qualname for i in r] for s, r in signals.chunk_rankings.items()
            } | {f"files:{s}": r for s, r in signals.file_rankings.items()}


def test_own_code_leaves_out_tests_vendored_docs_and_setup() -> None:
    paths = ["setup.py", "docs/conf.py", "benchmarks/run.py", "src/kit/__init__.py",
             "src/kit/core.py", "src/kit/_vendor/six.py", "src/kit/tests/test_core.py",
             "tests/test_kit.py", "tools/release.py", "conftest.py"]
    assert own_code(paths) == {"src/kit/__init__.py", "src/kit/core.py"}
    assert own_code(["tool.py", "setup.py", "examples/demo.py"]) == {"tool.py"}


def test_out_of_scope_code_never_takes_a_place_in_any_ranking(tmp_path: Path) -> None:
    noise = "def frobnicate_widget(widget):\n    return widget.frobnicate()\n"
    root = _git_repo(tmp_path / "r", {
        "kit/__init__.py": "", "kit/core.py": "def frobnicate(widget):\n    return widget\n",
        "setup.py": noise, "docs/conf.py": noise, "kit/_vendor/lib.py": noise,
        "tests/test_core.py": noise,
    })
    found = _signals(root, "frobnicate widget frobnicate")
    assert found["bm25"] == ["kit.core.frobnicate"]
    assert found["files:bm25"] == ["kit/core.py"]
    everywhere = _signals(root, "frobnicate widget", OFF.model_copy(update={"own_package": False}))
    assert len(everywhere["files:bm25"]) > 1


BIG = "\n\n".join(
    f"def step_{n}(value):\n    return value.{('render', 'widget', 'table')[n % 3]}({n})\n"
    for n in range(60))
SMALL = "def draw(item, place):\n    return item.render_widget_table(place)\n"


def test_a_file_ranks_by_its_best_function(tmp_path: Path) -> None:
    root = _git_repo(tmp_path / "r", {"pkg/__init__.py": "", "pkg/big.py": BIG,
                                      "pkg/small.py": SMALL})
    text = "render the widget table"
    best = _signals(root, text)
    assert best["files:bm25"][0] == "pkg/small.py"
    whole = _signals(root, text, OFF.model_copy(update={"function_bm25": False}))
    assert whole["files:bm25"] != best["files:bm25"]


def test_query_words_count_once(tmp_path: Path) -> None:
    root = _git_repo(tmp_path / "r", {
        "pkg/__init__.py": "",
        "pkg/log.py": "def emit(message):\n    return 'warning'\n",
        "pkg/tz.py": "def parse_timezone(timezone_text):\n    return timezone_text\n",
    })
    text = "timezone\n" + "warning: something\n" * 40
    once = OFF.model_copy(update={"unique_query_words": True})
    assert _signals(root, text, once)["bm25"][0] == "pkg.tz.parse_timezone"
    counted = _signals(root, text, OFF.model_copy(update={"unique_query_words": False}))
    assert counted["bm25"][0] == "pkg.log.emit"


LITERALS = {
    "pkg/__init__.py": "",
    "pkg/cli.py": (
        "def build_parser(parser):\n"
        "    parser.add_argument('--keep-going', action='store_true')\n\n\n"
        "def check(value, name):\n"
        "    if value < 0:\n"
        "        raise ValueError('%s must not be negative, got %r' % (name, value))\n"
        "    return value\n"),
    "pkg/other.py": "def negative(value):\n    return -value\n",
}


def test_quoted_messages_and_flags_meet_the_literals_that_print_them(tmp_path: Path) -> None:
    root = _git_repo(tmp_path / "r", LITERALS)
    found = _signals(root, "Running with --keep-going, then: ValueError: width must not be "
                           "negative, got -3")
    assert found["literal"][:2] == ["pkg.cli.check", "pkg.cli.build_parser"]
    assert "literal" not in _signals(root, "x", OFF.model_copy(update={"literals": False}))


def test_long_literals_are_kept_whole() -> None:
    message = "a rather long error message " * 12
    chunks = chunk_source("m.py", "m", f"def f():\n    raise ValueError({message!r})\n".encode())
    assert chunks[1].literals == (message.strip(),)


def test_identifiers_are_in_source_order() -> None:
    source = b"def f(zeta):\n    alpha = beta(zeta)\n    return gamma.delta(alpha)\n"
    chunk = chunk_source("m.py", "m", source)[1]
    assert chunk.identifiers == ("f", "zeta", "alpha", "beta", "gamma", "delta")


PYTEST = """\
pkg/cli.py:7: in check
    raise ValueError(...)
E   ValueError: bad
"""


def test_pytest_frames_name_the_function_that_failed(tmp_path: Path) -> None:
    root = _git_repo(tmp_path / "r", LITERALS)
    index = build_index(root, tmp_path / "idx", None)
    result = search(index, PYTEST, options=OFF)
    assert result.functions[0].qualname == "pkg.cli.check"
    assert "in traceback at pkg/cli.py:7" in result.functions[0].reasons
    without = search(index, PYTEST, options=OFF.model_copy(update={"frames": False}))
    assert not any(r.startswith("in traceback") for f in without.functions for r in f.reasons)


def test_a_small_fusion_constant_makes_first_places_count() -> None:
    rankings = {"a": ["first", "x", "y", "z", "w", "v", "u", "t", "s", "tenth"]}
    for k, ratio in ((60.0, 1.2), (LocateSettings().rrf_k, 2.0)):
        fused = {f.key: f.score for f in reciprocal_rank_fusion(rankings, {}, k=k)}
        assert (fused["first"] / fused["tenth"] > ratio) == (k < 60)


class CountingEmbedder:
    """Deterministic vectors from a text's letters; counts what it was asked to embed."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    @property
    def name(self) -> str:
        return "counting"

    def embed(self, texts: Sequence[str]) -> Vectors:
        self.texts.extend(texts)
        rows = np.zeros((len(texts), DIM), dtype=np.float32)
        for r, text in enumerate(texts):
            for ch in text:
                rows[r, ord(ch) % DIM] += 1.0
        return normalise(rows)


def test_vectors_are_cached_by_text(tmp_path: Path) -> None:
    cache, embedder = VectorCache(tmp_path / "v.sqlite"), CountingEmbedder()
    first = cache.embed(embedder, ["alpha", "beta"])
    again = cache.embed(embedder, ["beta", "gamma"])
    assert embedder.texts == ["alpha", "beta", "gamma"]
    assert np.allclose(first[1], again[0])


def test_editing_one_function_embeds_only_that_function(tmp_path: Path) -> None:
    files = {"pkg/__init__.py": "", "pkg/m.py": "def a():\n    return 1\n\n\ndef b():\n    return 2\n"}
    root = _git_repo(tmp_path / "r", files)
    embedder = CountingEmbedder()
    build_index(root, tmp_path / "idx", embedder)
    before = len(embedder.texts)
    (root / "pkg/m.py").write_text(files["pkg/m.py"].replace("return 2", "return two"))
    index = build_index(root, tmp_path / "idx", embedder)
    assert embedder.texts[before:] == [t for t in embedder.texts[before:] if "two" in t]
    assert len(embedder.texts) == before + 1
    assert index.stats.files_chunked == 1


def test_auto_uses_minilm_while_the_project_is_small(tmp_path: Path) -> None:
    root = _git_repo(tmp_path / "r", LITERALS)
    assert embedder_kind_for(root, LocateSettings()) == "minilm"
    assert embedder_kind_for(root, LocateSettings(minilm_max_files=2)) == "static"
    assert embedder_kind_for(root, LocateSettings(embedder="none")) is None


class FakeDamagedCollection:
    """A real collection whose queries fail the way a store damaged by two writers does."""

    def __init__(self, real: object) -> None:
        self.real = real

    def __getattr__(self, name: str) -> object:
        return getattr(self.real, name)

    def query(self, **_: object) -> object:
        from chromadb.errors import InternalError

        raise InternalError("Error executing plan: Internal error: Error finding id")


def test_a_damaged_local_vector_store_is_rebuilt_from_the_cache(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import diffusellm.pipeline.locate.index as index_module

    root = _git_repo(tmp_path / "r", {"pkg/__init__.py": "", "pkg/m.py": "def a():\n    return 1\n"})
    embedder = CountingEmbedder()
    first = build_index(root, tmp_path / "idx", embedder)
    assert first.collection is not None
    stored, embedded = first.collection.count(), len(embedder.texts)
    (tmp_path / "idx" / "chroma" / "left-by-the-damaged-store").write_text("x")
    real_open = index_module.open_collection
    opened: list[str] = []

    def open_once_damaged(config: StoreConfig, name: str) -> object:
        opened.append(name)
        real = real_open(config, name)
        return FakeDamagedCollection(real) if len(opened) == 1 else real

    monkeypatch.setattr(index_module, "open_collection", open_once_damaged)
    index = build_index(root, tmp_path / "idx", embedder)
    assert len(opened) == 2 and index.collection is not None and index.collection.count() == stored
    assert not (tmp_path / "idx" / "chroma" / "left-by-the-damaged-store").exists()
    assert len(embedder.texts) == embedded  # rebuilt from the vector cache: nothing embedded again
    server = StoreConfig(host="127.0.0.1", port=1)
    monkeypatch.setattr(index_module, "open_collection",
                        lambda config, name: FakeDamagedCollection(real_open(StoreConfig(
                            path=tmp_path / "idx" / "chroma"), name)))
    with pytest.raises(RepositoryError, match="vector store failed") as failed:
        build_index(root, tmp_path / "idx", embedder, store=server)
    assert "chromadb server" in (failed.value.hint or "")
