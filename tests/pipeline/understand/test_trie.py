"""Signature trie: exact and one-edit matches for duplicate detection, rebuilt from the graph."""

from __future__ import annotations

from pathlib import Path

import pytest

from diffusellm.errors import InputError
from diffusellm.pipeline.understand.digest.build import digest_repository
from diffusellm.pipeline.understand.graph import KnowledgeGraph
from diffusellm.pipeline.understand.trie import SignatureTrie, name_tokens, signature_key
from tests.conftest import make_repo

ROWS = [
    ("pkg.text.slugify", "slugify", "(text: str, *, sep: str = '-') -> str"),
    ("pkg.text.kebab_case", "kebab_case", "(text: str, *, sep: str = '_') -> str"),
    ("pkg.text.slug_upper", "slug_upper", "(text: str, *, sep: str, upper: bool) -> str"),
    ("pkg.text.slug_bytes", "slug_bytes", "(text: str, *, sep: str) -> bytes"),
    ("pkg.text.slug_words", "slug_words", "(words: str, *, sep: str) -> str"),
    ("pkg.text.Slugger.run", "run", "(self, text: str, *, sep: str = '-') -> str"),
    ("pkg.text.positional", "positional", "(text: str, sep: str) -> str"),
    ("pkg.io.read", "read", "(path: Path, mode: str = 'r') -> bytes"),
]


@pytest.fixture
def trie() -> SignatureTrie:
    return SignatureTrie.from_symbols(ROWS)


def test_exact_signatures_come_first_ranked_by_shared_name_words(trie: SignatureTrie) -> None:
    found = trie.similar("(text: str, *, sep: str = '.') -> str", "slugify_text", max_results=3)

    # Defaults do not matter; sharing the word "slugify" puts slugify first, the rest by name.
    assert [q for q, _ in found] == [
        "pkg.text.slugify", "pkg.text.Slugger.run", "pkg.text.kebab_case"]
    assert found[0][1] > found[1][1] == found[2][1]
    scores = dict(trie.similar("(text: str, *, sep: str) -> str", "slugify", max_results=10))
    assert scores["pkg.text.slugify"] == 1.0  # same signature, same name
    assert 0.85 <= scores["pkg.text.kebab_case"] < 1.0  # same signature, other name
    assert scores["pkg.text.Slugger.run"] == scores["pkg.text.kebab_case"]  # self is ignored


def test_near_matches_tolerate_one_param_more_fewer_renamed_or_other_return(
        trie: SignatureTrie) -> None:
    scores = dict(trie.similar("(text: str, *, sep: str) -> str", "slugify", max_results=10))

    exact = {"pkg.text.slugify", "pkg.text.kebab_case", "pkg.text.Slugger.run"}
    near = {"pkg.text.slug_upper",  # one extra parameter
            "pkg.text.slug_bytes",  # other return type
            "pkg.text.slug_words"}  # renamed parameter
    assert set(scores) == exact | near
    assert min(scores[q] for q in exact) > max(scores[q] for q in near)
    assert all(0 < scores[q] <= 0.7 for q in near)
    # A keyword-only parameter made positional is a different calling convention.
    assert "pkg.text.positional" not in scores


def test_a_missing_parameter_is_one_edit(trie: SignatureTrie) -> None:
    found = dict(trie.similar("(path: Path) -> bytes", "read_file"))

    assert set(found) == {"pkg.io.read"}
    assert found["pkg.io.read"] <= 0.7


def test_max_results_no_match_and_duplicate_definitions(trie: SignatureTrie) -> None:
    assert len(trie.similar("(text: str, *, sep: str) -> str", "x", max_results=2)) == 2
    assert trie.similar("(a, b, c, d) -> int", "combine") == []
    trie.add("pkg.compat.load", "load", "(data: bytes) -> dict")
    trie.add("pkg.compat.load", "load", "(data: bytes) -> dict")  # try: ... except: redefined
    assert trie.similar("(data: bytes) -> dict", "load") == [("pkg.compat.load", 1.0)]


def test_signature_keys_normalise_spacing_strings_and_def_lines() -> None:
    assert signature_key("(a: 'Path', b=1)") == signature_key("def f(a:Path, b = 2):")
    assert signature_key("a, *rest, key, **kw") == (
        ("arg", "a", ""), ("*", "rest", ""), ("kw", "key", ""), ("**", "kw", ""), ("->", "", ""))
    assert name_tokens("parseHTTPHeader_v2") == {"parse", "http", "header", "v", "2"}
    with pytest.raises(InputError, match="not a Python signature"):
        signature_key("(a, b")


def test_trie_rebuilds_from_a_digested_graph(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {
        "lib/__init__.py": "",
        "lib/paths.py": "def join_parts(base: str, *parts: str) -> str:\n    return base\n",
        "lib/broken.py": "def weird(a, (b, c)):\n    pass\n",
    })
    digest_repository(repo, tmp_path / "graph.db")

    with KnowledgeGraph(tmp_path / "graph.db") as graph:
        trie = SignatureTrie.from_graph(graph)

    assert trie.similar("(root: str, *names: str) -> str", "join") == []
    assert trie.similar("(base: str, *parts: str) -> str", "join_paths")[0][0] == (
        "lib.paths.join_parts")
