"""A `TextGenerator` that loads its model on first use, so runs that need no model never load one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from diffusellm.models.base import ChatMessage, ModelInfo, TextGenerator


class LazyTextGenerator:
    """Wraps a loader; the first call of any method loads the model, later calls reuse it."""

    def __init__(self, load: Callable[[], TextGenerator]) -> None:
        self._load = load
        self._model: TextGenerator | None = None

    @property
    def loaded(self) -> bool:
        """Whether the model has been loaded."""
        return self._model is not None

    def _get(self) -> TextGenerator:
        if self._model is None:
            self._model = self._load()
        return self._model

    def info(self) -> ModelInfo:
        """What is loaded and where it runs (loads the model)."""
        return self._get().info()

    def generate(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        seed: int | None = None,
        stop: Sequence[str] = (),
    ) -> str:
        """See `TextGenerator.generate`."""
        return self._get().generate(
            messages, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, stop=stop
        )

    def generate_json(
        self,
        messages: Sequence[ChatMessage],
        schema: dict[str, Any],
        *,
        max_new_tokens: int = 512,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> str:
        """See `TextGenerator.generate_json`."""
        return self._get().generate_json(
            messages, schema, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed
        )

    def score(self, messages: Sequence[ChatMessage], continuation: str) -> float:
        """See `TextGenerator.score`."""
        return self._get().score(messages, continuation)
