"""Phase 5 generation: the LLM standing in for the diffusion model, and the budget every call spends."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from diffusellm.models.base import ChatMessage, Denoiser, Hole, ModelInfo, Scaffold, TextGenerator
from diffusellm.pipeline.generate.prompts import fill_messages
from diffusellm.pipeline.locate.context import approx_tokens

Clock = Callable[[], float]


class BudgetExhaustedError(Exception):
    """A cap on tokens or wall time is reached; `reason` says which, for the job report."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Budget:
    """Tokens and seconds a collaboration may spend; checked before every generation."""

    max_tokens: int
    max_seconds: float
    clock: Clock = time.monotonic
    spent: int = 0
    started: float = field(default=-1.0)

    def __post_init__(self) -> None:
        if self.started < 0:
            self.started = self.clock()

    def check_time(self) -> None:
        """Raise when the wall-time cap has passed."""
        elapsed = self.clock() - self.started
        if elapsed > self.max_seconds:
            raise BudgetExhaustedError(f"the wall-time cap of {self.max_seconds:g} s was reached")

    def reserve(self, tokens: int) -> None:
        """Raise unless `tokens` more still fit under the token cap (and time is left)."""
        self.check_time()
        if self.spent + tokens > self.max_tokens:
            raise BudgetExhaustedError(
                f"the token cap of {self.max_tokens} was reached ({self.spent} spent, {tokens} more needed)"
            )

    def charge(self, text: str) -> None:
        """Count what a generation produced."""
        self.spent += approx_tokens(text)


class BudgetedLLM:
    """A `TextGenerator` that spends from a `Budget`: refuses a call that could overrun it."""

    def __init__(self, inner: TextGenerator, budget: Budget) -> None:
        self.inner = inner
        self.budget = budget

    def info(self) -> ModelInfo:
        return self.inner.info()

    def generate(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        seed: int | None = None,
        stop: Sequence[str] = (),
    ) -> str:
        self.budget.reserve(max_new_tokens)
        text = self.inner.generate(
            messages, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, stop=stop
        )
        self.budget.charge(text)
        return text

    def generate_json(
        self,
        messages: Sequence[ChatMessage],
        schema: dict[str, Any],
        *,
        max_new_tokens: int = 512,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> str:
        self.budget.reserve(max_new_tokens)
        text = self.inner.generate_json(
            messages, schema, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed
        )
        self.budget.charge(text)
        return text

    def score(self, messages: Sequence[ChatMessage], continuation: str) -> float:
        self.budget.check_time()
        return self.inner.score(messages, continuation)


class BudgetedDenoiser:
    """A `Denoiser` that spends from a `Budget` (each hole's size is reserved up front)."""

    def __init__(self, inner: Denoiser, budget: Budget) -> None:
        self.inner = inner
        self.budget = budget

    def info(self) -> ModelInfo:
        return self.inner.info()

    def fill(
        self,
        scaffold: Scaffold,
        *,
        context: str = "",
        steps: int | None = None,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> list[str]:
        self.budget.reserve(sum(p.max_tokens for p in scaffold if isinstance(p, Hole)))
        texts = self.inner.fill(scaffold, context=context, steps=steps, temperature=temperature, seed=seed)
        for text in texts:
            self.budget.charge(text)
        return texts


class LLMFiller:
    """A `Denoiser` made of a causal LLM, for when no diffusion model is configured.

    Each hole is written in turn: the model sees the code before it (earlier holes filled), the
    code after it (later holes shown as `...`) and the context, and answers with the gap's code.
    """

    def __init__(self, llm: TextGenerator) -> None:
        self.llm = llm

    def info(self) -> ModelInfo:
        inner = self.llm.info()
        return ModelInfo(
            name=inner.name,
            backend=f"llm-filler({inner.backend})",
            device=inner.device,
            dtype=inner.dtype,
            parameters=inner.parameters,
            details="fills scaffold holes left to right with the language model",
        )

    def fill(
        self,
        scaffold: Scaffold,
        *,
        context: str = "",
        steps: int | None = None,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> list[str]:
        pieces = list(scaffold)
        fills: list[str] = []
        for index, piece in enumerate(pieces):
            if not isinstance(piece, Hole):
                continue
            prefix = "".join(p if isinstance(p, str) else _line(f) for p, f in _filled(pieces[:index], fills))
            suffix = "".join(p if isinstance(p, str) else "    ...\n" for p in pieces[index + 1 :])
            reply = self.llm.generate(
                fill_messages(prefix, suffix, context),
                max_new_tokens=piece.max_tokens,
                temperature=temperature,
                seed=seed,
                stop=("```",),
            )
            fills.append(reply)
        return fills


def _line(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"


def _filled(pieces: Sequence[str | Hole], fills: Sequence[str]) -> list[tuple[str | Hole, str]]:
    """Each piece with the fill of its hole ("" for fixed text)."""
    out: list[tuple[str | Hole, str]] = []
    it = iter(fills)
    for piece in pieces:
        out.append((piece, next(it, "") if isinstance(piece, Hole) else ""))
    return out
