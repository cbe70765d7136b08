"""Seeds from issue text, personalized PageRank and reciprocal-rank fusion."""

from __future__ import annotations

import pytest

from diffusellm.pipeline.locate.rank import (
    Frame,
    extract_seeds,
    personalized_pagerank,
    reciprocal_rank_fusion,
)

ISSUE = '''\
Discount crashes on empty carts

Calling `shop.pricing.apply_discount` with an empty cart fails (see shop/pricing.py:41):

Traceback (most recent call last):
  File "/home/u/app/main.py", line 9, in <module>
    run()
  File "/venv/lib/python3.11/site-packages/shop/cart.py", line 88, in checkout
    total = apply_discount(self, code)
  File "/venv/lib/python3.11/site-packages/shop/pricing.py", line 41, in apply_discount
    return total / count
ZeroDivisionError: division by zero

I think `PriceBook.lookup` and compute_total() are fine.
'''


def test_frames_come_deepest_first() -> None:
    seeds = extract_seeds(ISSUE, written_paths=False)
    assert seeds.frames[0] == Frame("/venv/lib/python3.11/site-packages/shop/pricing.py", 41,
                                    "apply_discount")
    assert [f.func for f in seeds.frames] == ["apply_discount", "checkout", "<module>"]


def test_written_path_and_line_is_a_frame_too() -> None:
    seeds = extract_seeds(ISSUE)
    assert seeds.frames[-1] == Frame("shop/pricing.py", 41, "")


PYTEST_LOG = """    def test_round():
>       assert total(cart) == 3
tests/test_cart.py:12:
_ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _
/home/ci/checkout/shop/src/shop/pricing.py:352: in total
    return round(value, places)
E   TypeError: bad places
C:\\build\\shop\\src\\shop\\money.py:7: TypeError
"""


def test_pytest_frames_and_absolute_and_windows_paths_are_read() -> None:
    seeds = extract_seeds(PYTEST_LOG)
    assert seeds.frames[0] == Frame("C:\\build\\shop\\src\\shop\\money.py", 7, "")
    assert seeds.frames[1] == Frame("/home/ci/checkout/shop/src/shop/pricing.py", 352, "total")
    assert seeds.frames[2] == Frame("tests/test_cart.py", 12, "")
    assert "/home/ci/checkout/shop/src/shop/pricing.py" in seeds.paths


def test_without_written_paths_absolute_paths_are_not_frames() -> None:
    seeds = extract_seeds(PYTEST_LOG, written_paths=False)
    assert seeds.frames == []


def test_paths_names_and_errors_are_found() -> None:
    seeds = extract_seeds(ISSUE)
    assert "shop/pricing.py" in seeds.paths
    assert seeds.names[:2] == ["shop.pricing.apply_discount", "PriceBook.lookup"]
    assert "compute_total" in seeds.names
    assert "ZeroDivisionError" in seeds.errors
    assert not any(n.endswith(".py") for n in seeds.names)


def test_plain_prose_names_nothing() -> None:
    seeds = extract_seeds("The total is wrong when the cart is empty.")
    assert seeds.frames == [] and seeds.paths == [] and seeds.names == []


def test_pagerank_favours_the_seed_and_its_neighbours() -> None:
    # 0 - 1 - 2 - 3 - 4 (a chain, both directions), seeded at 0
    chain = [(i, i + 1, 1.0) for i in range(4)] + [(i + 1, i, 1.0) for i in range(4)]
    rank = personalized_pagerank(5, chain, {0: 1.0})
    assert list(rank.argsort()[::-1]) == [0, 1, 2, 3, 4]
    assert rank.sum() == pytest.approx(1.0)


def test_pagerank_without_seeds_or_edges() -> None:
    assert personalized_pagerank(3, [(0, 1, 1.0)], {}).tolist() == [0.0, 0.0, 0.0]
    rank = personalized_pagerank(3, [], {2: 1.0})
    assert rank.argmax() == 2 and rank.sum() == pytest.approx(1.0)


def test_pagerank_follows_calls_from_a_dangling_callee() -> None:
    # 0 calls 1, 1 calls 2; 2 calls nothing: its mass returns to the seed
    rank = personalized_pagerank(4, [(0, 1, 1.0), (1, 2, 1.0)], {0: 1.0})
    assert rank[3] == 0.0 and rank[2] > 0.0 and rank.sum() == pytest.approx(1.0)


def test_rrf_rewards_agreement_and_explains_itself() -> None:
    fused = reciprocal_rank_fusion(
        {"bm25": ["a", "b", "c"], "dense": ["b", "d"]}, {"bm25": 1.0, "dense": 1.0})
    assert [f.key for f in fused][:1] == ["b"]
    top = fused[0]
    assert top.reasons == ["bm25 #2", "dense #1"]
    assert top.score == pytest.approx(1 / 62 + 1 / 61)


def test_rrf_weights_change_the_order() -> None:
    rankings = {"bm25": ["a"], "named in issue": ["z"]}
    fused = reciprocal_rank_fusion(rankings, {"bm25": 1.0, "named in issue": 2.0})
    assert [f.key for f in fused] == ["z", "a"]
