"""BM25 over chunks and files: identifier splitting, stemming, paths as words, ranking."""

from __future__ import annotations

from diffusellm.pipeline.locate.chunks import chunk_source
from diffusellm.pipeline.locate.lexical import LexicalIndex, build_lexical, stem, tokenize
from diffusellm.pipeline.locate.store import chunk_ids

STORAGE = b'''\
"""Persistence of carts."""
import json


def save_cart(cart, path):
    payload = {"items": [item.sku for item in cart.items]}
    path.write_text(json.dumps(payload))


def load_cart(path):
    return json.loads(path.read_text())
'''

PRICING = b'''\
def applyDiscount(cart, percent):
    if percent < 0:
        raise ValueError("discount must not be negative")
    return cart.total * (1 - percent / 100)
'''


def test_tokenize_splits_identifiers_and_keeps_them_whole() -> None:
    words = tokenize("parseHTTPResponse_code in getUserName")
    assert {"parsehttpresponse_code", "parse", "http", "response", "code"} <= set(words)
    assert {"getusername", "get", "user", "name"} <= set(words)
    assert "in" not in words  # stop word


def test_tokenize_stems_and_drops_noise() -> None:
    assert tokenize("Converts converted converting") == ["convert", "convert", "convert"]
    assert tokenize("self.x = None") == []
    assert stem("class") == "class" and stem("entries") == "entry"


def test_bm25_ranks_the_chunk_that_uses_the_words() -> None:
    chunks = chunk_source("shop/storage.py", "shop.storage", STORAGE) + chunk_source(
        "shop/pricing.py", "shop.pricing", PRICING)
    indexes = build_lexical(chunks, chunk_ids(chunks))
    best = indexes.chunks.ranking(tokenize("negative discount raises an error"), 5)
    assert chunks[best[0]].qualname == "shop.pricing.applyDiscount"
    best = indexes.chunks.ranking(tokenize("loading a cart from json"), 5)
    assert chunks[best[0]].qualname == "shop.storage.load_cart"


def test_file_index_matches_words_that_only_appear_in_the_path() -> None:
    chunks = chunk_source("shop/storage.py", "shop.storage", b"x = 1\n") + chunk_source(
        "shop/pricing.py", "shop.pricing", b"y = 2\n")
    indexes = build_lexical(chunks, chunk_ids(chunks))
    ranked = indexes.files.ranking(tokenize("the storage layer"), 5)
    assert [indexes.file_paths[i] for i in ranked] == ["shop/storage.py"]


def test_unknown_words_score_nothing() -> None:
    index = LexicalIndex.build([["alpha", "beta"], []])
    assert index.ranking(["gamma"], 5) == []
    assert index.scores(["alpha"]).tolist()[1] == 0.0
    assert index.ranking(["alpha"], 5) == [0]


def test_rebuild_reuses_tokens_of_unchanged_chunks() -> None:
    chunks = chunk_source("shop/storage.py", "shop.storage", STORAGE)
    ids = chunk_ids(chunks)
    first = build_lexical(chunks, ids)
    changed = chunk_source("shop/pricing.py", "shop.pricing", PRICING)
    both = [*chunks, *changed]
    second = build_lexical(both, chunk_ids(both), first.tokens)
    assert second.tokens[ids[1]] is first.tokens[ids[1]]
    best = second.chunks.ranking(tokenize("negative discount"), 1)
    assert both[best[0]].qualname == "shop.pricing.applyDiscount"
