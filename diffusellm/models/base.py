"""The protocols every model core implements: `TextGenerator` (LLM) and `Denoiser` (masked diffusion)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypedDict

from diffusellm.errors import DiffuseLLMError


class ModelError(DiffuseLLMError):
    """A model could not be loaded or run (missing files, out of memory, endpoint down)."""


class ChatMessage(TypedDict):
    """One chat turn."""

    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class ModelInfo:
    """What `diffusellm models check` prints about a loaded model."""

    name: str
    backend: str
    device: str
    dtype: str
    parameters: int | None = None
    details: str = ""


class TextGenerator(Protocol):
    """A causal LLM: free text, schema-constrained JSON, and log-likelihood scoring."""

    def info(self) -> ModelInfo:
        """What is loaded and where it runs."""
        ...

    def generate(
        self, messages: Sequence[ChatMessage], *, max_new_tokens: int = 256, temperature: float = 0.0,
        seed: int | None = None, stop: Sequence[str] = (),
    ) -> str:
        """The assistant's reply to `messages` (chat template applied)."""
        ...

    def generate_json(
        self, messages: Sequence[ChatMessage], schema: dict[str, Any], *, max_new_tokens: int = 512,
        temperature: float = 0.0, seed: int | None = None,
    ) -> str:
        """A reply constrained by construction to JSON valid against `schema` (grammar-constrained)."""
        ...

    def score(self, messages: Sequence[ChatMessage], continuation: str) -> float:
        """Sum of log-probabilities of `continuation` as the assistant's reply to `messages`."""
        ...


@dataclass(frozen=True)
class Hole:
    """A masked region of a scaffold for the denoiser to fill, at most `max_tokens` long."""

    max_tokens: int


Scaffold = Sequence[str | Hole]


class Denoiser(Protocol):
    """A masked-diffusion model: fills the holes of a scaffold, keeping every unmasked token fixed."""

    def info(self) -> ModelInfo:
        """What is loaded and where it runs."""
        ...

    def fill(
        self, scaffold: Scaffold, *, context: str = "", steps: int | None = None, temperature: float = 0.0,
        seed: int | None = None,
    ) -> list[str]:
        """The text of each hole, in order."""
        ...
