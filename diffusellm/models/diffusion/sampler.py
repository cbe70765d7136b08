"""Generation, diffusion core: a checkpoint-independent masked-diffusion sampler that unmasks by confidence.

The sampler sees a model only as a function from token ids `(1, L)` to logits `(1, L, V)`. At each step it
runs that function over the whole sequence (the model is bidirectional, so every position sees every other),
looks at the distributions of the still-masked positions of the current block, and commits the most
confident of them. Committed and unmasked tokens are never changed. Masked positions are split, left to
right, into blocks that are filled one after another (semi-autoregressive decoding, as in LLaDA).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

import torch

from diffusellm.models.base import ModelError

LogitsFn = Callable[[torch.Tensor], torch.Tensor]
"""Token ids `(1, L)` (long) to logits `(1, L, V)`: one full bidirectional forward."""


@dataclass(frozen=True)
class SampleResult:
    """The denoised sequence and which positions were committed at each step, in order."""

    ids: torch.Tensor
    commits: tuple[tuple[int, ...], ...]

    @property
    def steps(self) -> int:
        """Forward passes spent (one per step)."""
        return len(self.commits)


def int_list(values: torch.Tensor) -> list[int]:
    """The elements of an integer tensor as Python ints."""
    return [int(value) for value in cast(list[int], values.tolist())]  # pyright: ignore[reportUnknownMemberType]


def transfer_schedule(masks: int, steps: int) -> list[int]:
    """How many masks to commit at each step so that all `masks` are filled in `min(steps, masks)` steps.

    Earlier steps take the remainder, so the counts never differ by more than one.
    """
    if masks <= 0:
        return []
    used = max(1, min(steps, masks))
    base, extra = divmod(masks, used)
    return [base + 1 if step < extra else base for step in range(used)]


def plan_blocks(positions: Sequence[int], block_length: int, steps: int) -> list[tuple[list[int], int]]:
    """Split masked `positions` (ascending) into blocks of `block_length`, each with its share of `steps`.

    The budgets add up to at most `steps` and each block gets at least one step: when there are more blocks
    than steps, blocks grow until they fit. Each spare step goes to the block with the most masks per step,
    so commits per step stay as even as they can across blocks and a short last block wastes no steps.
    """
    count = len(positions)
    if count == 0:
        return []
    steps = max(1, steps)
    size = max(block_length, -(-count // steps))
    blocks = [list(positions[start : start + size]) for start in range(0, count, size)]
    budgets = [1] * len(blocks)
    spare = min(steps, count) - len(blocks)
    # Ties go to the earliest block.
    heap: list[tuple[float, int]] = [(-float(len(block)), index) for index, block in enumerate(blocks)]
    heapq.heapify(heap)
    while spare > 0:
        _, index = heapq.heappop(heap)
        budgets[index] += 1
        spare -= 1
        heapq.heappush(heap, (-len(blocks[index]) / budgets[index], index))
    return list(zip(blocks, budgets, strict=True))


def shift_logits(logits: torch.Tensor) -> torch.Tensor:
    """Dream-style alignment: the logits for position i come out at position i - 1 (position 0 keeps its own)."""
    return torch.cat([logits[:, :1], logits[:, :-1]], dim=1)


def choose_tokens(
    rows: torch.Tensor, temperature: float, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """A token for each row of logits `(N, V)` and its probability: greedy at temperature 0, else sampled."""
    if temperature <= 0:
        confidence, tokens = torch.softmax(rows, dim=-1).max(dim=-1)
        return tokens, confidence
    probs = torch.softmax(rows / temperature, dim=-1)
    tokens = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
    return tokens, probs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


class MaskedDiffusionSampler:
    """Fills the masked positions of a token sequence by iterative confidence-ordered unmasking."""

    def __init__(
        self,
        logits_fn: LogitsFn,
        mask_id: int,
        *,
        steps: int = 32,
        block_length: int = 32,
        temperature: float = 0.0,
    ) -> None:
        if steps < 1 or block_length < 1 or temperature < 0:
            raise ModelError(
                f"bad sampler settings: steps={steps}, block_length={block_length}, temperature={temperature}",
                hint="steps and block_length must be at least 1 and temperature at least 0",
            )
        self._logits_fn = logits_fn
        self.mask_id = mask_id
        self.steps = steps
        self.block_length = block_length
        self.temperature = temperature

    def sample(
        self,
        ids: torch.Tensor,
        *,
        steps: int | None = None,
        temperature: float | None = None,
        seed: int | None = None,
    ) -> SampleResult:
        """Denoise `ids` (1-D, long): every position equal to the mask id is filled within the step budget."""
        if ids.dim() != 1:
            raise ModelError(
                f"the sampler takes one 1-D sequence, got shape {tuple(ids.shape)}",
                hint="pass a single sequence of token ids",
            )
        budget = self.steps if steps is None else steps
        temp = self.temperature if temperature is None else temperature
        if budget < 1 or temp < 0:
            raise ModelError(
                f"bad sampling call: steps={budget}, temperature={temp}",
                hint="steps must be at least 1 and temperature at least 0",
            )
        out = ids.clone()
        generator = None
        if seed is not None:
            generator = torch.Generator(device=out.device).manual_seed(seed)
        positions = int_list(torch.nonzero(out == self.mask_id).flatten())
        commits: list[tuple[int, ...]] = []
        with torch.no_grad():
            for block, block_steps in plan_blocks(positions, self.block_length, budget):
                for count in transfer_schedule(len(block), block_steps):
                    committed = self._step(out, block, count, temp, generator)
                    block = [p for p in block if p not in committed]
                    commits.append(tuple(sorted(committed)))
        return SampleResult(ids=out, commits=tuple(commits))

    def _step(
        self,
        ids: torch.Tensor,
        masked: list[int],
        count: int,
        temperature: float,
        generator: torch.Generator | None,
    ) -> set[int]:
        """One forward; commit the `count` most confident of the `masked` positions in place."""
        logits = self._logits_fn(ids.unsqueeze(0))
        if logits.dim() != 3 or tuple(logits.shape[:2]) != (1, ids.shape[0]):
            raise ModelError(
                f"the model returned logits of shape {tuple(logits.shape)} for {ids.shape[0]} tokens",
                hint="the denoiser needs one distribution per input position: (1, length, vocabulary)",
            )
        if self.mask_id >= logits.shape[-1]:
            raise ModelError(
                f"mask id {self.mask_id} is outside the model's vocabulary of {logits.shape[-1]}",
                hint="check the mask token of the tokenizer against the model's vocabulary",
            )
        where = torch.tensor(masked, dtype=torch.long, device=ids.device)
        rows = logits[0, where].float()
        rows[:, self.mask_id] = float("-inf")  # a committed token is never the mask itself
        tokens, confidence = choose_tokens(rows, temperature, generator)
        # A stable sort keeps the leftmost position first among equally confident ones.
        order = torch.sort(confidence, descending=True, stable=True).indices[:count]
        ids[where[order]] = tokens[order].to(ids.dtype)
        return {masked[i] for i in int_list(order)}
