"""Tests for the masked-diffusion sampler, scaffold tokens and hole text, on tiny models built in the test."""

from __future__ import annotations

import random

import pytest
import torch

from diffusellm.errors import InputError
from diffusellm.models.base import Hole, ModelError
from diffusellm.models.diffusion.sampler import (
    MaskedDiffusionSampler,
    plan_blocks,
    shift_logits,
    transfer_schedule,
)
from diffusellm.models.diffusion.scaffold import hole_text, tokenise_scaffold

VOCAB = 24
MASK = VOCAB - 1


class TinyBidirectional(torch.nn.Module):
    """A randomly initialised one-layer bidirectional encoder with a token head: a stand-in denoiser."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.embed = torch.nn.Embedding(VOCAB, 16)
            self.place = torch.nn.Embedding(256, 16)
            self.layer = torch.nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, dropout=0.0, batch_first=True)
            self.head = torch.nn.Linear(16, VOCAB)
        self.eval()

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        hidden = self.embed(ids) + self.place(torch.arange(ids.shape[1]))
        return self.head(self.layer(hidden))


def masked_sequence(rng: random.Random, length: int, share: float) -> torch.Tensor:
    tokens = [MASK if rng.random() < share else rng.randrange(MASK) for _ in range(length)]
    return torch.tensor(tokens, dtype=torch.long)


# --- schedule and blocks -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("masks", "steps"), [(1, 1), (7, 3), (3, 7), (32, 32), (100, 8), (5, 1)])
def test_schedule_fills_every_mask_within_the_budget(masks: int, steps: int) -> None:
    schedule = transfer_schedule(masks, steps)
    assert sum(schedule) == masks
    assert len(schedule) == min(masks, steps)
    assert min(schedule) >= 1 and max(schedule) - min(schedule) <= 1


@pytest.mark.parametrize(("count", "block_length", "steps"), [(40, 32, 32), (10, 4, 2), (64, 8, 64), (5, 32, 3)])
def test_blocks_cover_positions_in_order_within_the_budget(count: int, block_length: int, steps: int) -> None:
    positions = list(range(3, 3 + 2 * count, 2))
    plan = plan_blocks(positions, block_length, steps)
    assert [p for block, _ in plan for p in block] == positions
    assert sum(budget for _, budget in plan) <= steps
    assert all(1 <= budget <= len(block) for block, budget in plan)


def test_steps_are_shared_so_commits_per_step_stay_even_across_blocks() -> None:
    plan = plan_blocks(list(range(40)), 32, 32)
    assert [len(block) for block, _ in plan] == [32, 8]
    assert [budget for _, budget in plan] == [25, 7]  # at most 2 commits a step in either block


# --- sampler properties --------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", range(30))
def test_sampler_keeps_fixed_tokens_and_fills_every_mask_in_budget(case: int) -> None:
    rng = random.Random(case)
    ids = masked_sequence(rng, rng.randint(1, 60), rng.choice([0.2, 0.6, 1.0]))
    steps, block_length = rng.randint(1, 40), rng.randint(1, 20)
    masked = [i for i, token in enumerate(ids.tolist()) if token == MASK]
    sampler = MaskedDiffusionSampler(TinyBidirectional(case), MASK, steps=steps, block_length=block_length)
    result = sampler.sample(ids, temperature=rng.choice([0.0, 0.7, 1.5]), seed=case)

    fixed = ids != MASK
    assert torch.equal(result.ids[fixed], ids[fixed])
    assert MASK not in result.ids.tolist()
    assert result.steps <= steps
    committed = [p for step in result.commits for p in step]
    assert sorted(committed) == masked and len(set(committed)) == len(committed)
    # Blocks go left to right: the block index of each commit never goes down.
    size = max(block_length, -(-len(masked) // steps)) if masked else 1
    rank = {p: i for i, p in enumerate(masked)}
    block_of = [rank[p] // size for step in result.commits for p in step]
    assert block_of == sorted(block_of)


def test_no_token_of_block_two_is_committed_before_block_one_is_complete() -> None:
    ids = torch.tensor([5, 6] + [MASK] * 30 + [7], dtype=torch.long)
    sampler = MaskedDiffusionSampler(TinyBidirectional(), MASK, steps=30, block_length=8)
    result = sampler.sample(ids, temperature=1.0, seed=3)
    blocks = [set(range(2, 10)), set(range(10, 18)), set(range(18, 26)), set(range(26, 32))]
    done: set[int] = set()
    for step in result.commits:
        current = next(i for i, block in enumerate(blocks) if not block <= done)
        assert set(step) <= blocks[current], f"step {step} reaches past block {current}"
        done.update(step)
    assert done == set(range(2, 32))


def test_more_masks_than_steps_commits_several_per_step() -> None:
    ids = torch.full((20,), MASK, dtype=torch.long)
    result = MaskedDiffusionSampler(TinyBidirectional(), MASK, steps=4, block_length=64).sample(ids)
    assert [len(step) for step in result.commits] == [5, 5, 5, 5]


def test_the_most_confident_positions_are_committed_first() -> None:
    def peaked(ids: torch.Tensor) -> torch.Tensor:
        # Position p puts a peak of height p on token p % 4: later positions are more confident.
        logits = torch.zeros(1, ids.shape[1], 5)
        for p in range(ids.shape[1]):
            logits[0, p, p % 4] = float(p)
        return logits

    result = MaskedDiffusionSampler(peaked, 4, steps=3, block_length=6).sample(torch.full((6,), 4))
    assert result.commits == ((4, 5), (2, 3), (0, 1))
    assert result.ids.tolist() == [0, 1, 2, 3, 0, 1]


def test_the_mask_token_is_never_committed_even_when_the_model_prefers_it() -> None:
    def loves_mask(ids: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(1, ids.shape[1], VOCAB)
        logits[..., MASK] = 100.0
        return logits

    result = MaskedDiffusionSampler(loves_mask, MASK, steps=2).sample(torch.full((6,), MASK), temperature=1.0, seed=0)
    assert MASK not in result.ids.tolist()


def test_same_seed_same_output_and_different_seeds_can_differ() -> None:
    ids = torch.tensor([1, 2] + [MASK] * 12 + [3], dtype=torch.long)
    sampler = MaskedDiffusionSampler(TinyBidirectional(), MASK, steps=6, block_length=4, temperature=1.0)
    first = sampler.sample(ids, seed=11)
    again = sampler.sample(ids, seed=11)
    assert torch.equal(first.ids, again.ids) and first.commits == again.commits
    outputs = {tuple(sampler.sample(ids, seed=seed).ids.tolist()) for seed in range(8)}
    assert len(outputs) > 1


def test_greedy_decoding_ignores_the_seed() -> None:
    ids = torch.tensor([MASK] * 10, dtype=torch.long)
    sampler = MaskedDiffusionSampler(TinyBidirectional(), MASK, steps=5)
    assert torch.equal(sampler.sample(ids, seed=1).ids, sampler.sample(ids, seed=2).ids)


def test_logits_of_the_wrong_shape_are_a_model_error() -> None:
    sampler = MaskedDiffusionSampler(lambda ids: torch.zeros(1, 3, VOCAB), MASK)
    with pytest.raises(ModelError, match="shape"):
        sampler.sample(torch.full((5,), MASK))


def test_shift_moves_each_positions_logits_one_place_right() -> None:
    logits = torch.arange(4, dtype=torch.float).reshape(1, 4, 1)
    assert shift_logits(logits).flatten().tolist() == [0.0, 0.0, 1.0, 2.0]


# --- scaffold tokens and hole text ---------------------------------------------------------------------------


def test_scaffold_becomes_prefix_fixed_tokens_and_mask_runs() -> None:
    tokens = tokenise_scaffold(
        ["ab", Hole(3), Hole(1), "c"], encode=lambda s: [ord(c) for c in s], mask_id=0, prefix=[1]
    )
    assert tokens.ids == [1, 97, 98, 0, 0, 0, 0, 99]
    assert tokens.holes == [(3, 6), (6, 7)]


def test_scaffold_rejects_empty_holes_and_mask_tokens_in_fixed_text() -> None:
    with pytest.raises(InputError, match="max_tokens"):
        tokenise_scaffold([Hole(0)], encode=lambda s: [1], mask_id=0)
    with pytest.raises(InputError, match="mask token"):
        tokenise_scaffold(["x", Hole(2)], encode=lambda s: [0], mask_id=0)


def test_hole_text_stops_at_the_first_end_token_and_keeps_leading_spaces() -> None:
    pieces = {1: "\u2581x", 2: "\u2581=", 3: "\u25811", 4: "</s>", 5: "\u25812"}

    def decode(ids: list[int]) -> str:  # sentencepiece-like: word marks become spaces, the first one dropped
        return "".join(pieces[i] for i in ids if i != 4).replace("\u2581", " ").removeprefix(" ")

    assert hole_text([1, 2, 3, 4, 5], (2, 5), stop_ids={4}, decode=decode) == " 1"
    assert hole_text([1, 2, 4, 3, 5], (2, 5), stop_ids={4}, decode=decode) == ""
