"""A test fake of the `TextGenerator` protocol: replies come from a script, every prompt is recorded.

`ScriptedLLM(replies=[...])` answers `generate` and `generate_json` calls in order with the next
reply; a reply may be a callable that looks at the call (its prompt) and returns the text. A JSON
reply is checked against the schema the caller sent, because a real backend constrains its output
to that schema by construction: a script that breaks the schema is a broken test, not a model
mistake. `score` returns scripted log-likelihoods, or a length-based default.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from diffusellm.models.base import ChatMessage, ModelInfo


class ScriptExhaustedError(AssertionError):
    """The code under test asked the fake for more replies than the test scripted."""


@dataclass
class Call:
    """One recorded request."""

    kind: str
    """"generate", "generate_json" or "score"."""
    messages: list[ChatMessage]
    schema: dict[str, Any] | None = None
    max_new_tokens: int = 0
    temperature: float = 0.0
    seed: int | None = None
    continuation: str = ""

    @property
    def prompt(self) -> str:
        """All message contents joined, for `in` checks."""
        return "\n".join(m["content"] for m in self.messages)


Reply = str | Callable[[Call], str]


@dataclass
class ScriptedLLM:
    """Scripted stand-in for an LLM (a test fake, never used outside tests)."""

    replies: list[Reply] = field(default_factory=lambda: [])
    scores: list[float] | Callable[[Call], float] | None = None
    name: str = "scripted-fake"
    check_schema: bool = True
    """False plays a backend that does not constrain its output (an endpoint ignoring the schema)."""
    calls: list[Call] = field(default_factory=lambda: [])

    def info(self) -> ModelInfo:
        return ModelInfo(name=self.name, backend="scripted", device="cpu", dtype="none")

    def generate(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        seed: int | None = None,
        stop: Sequence[str] = (),
    ) -> str:
        call = Call("generate", list(messages), None, max_new_tokens, temperature, seed)
        return self._answer(call)

    def generate_json(
        self,
        messages: Sequence[ChatMessage],
        schema: dict[str, Any],
        *,
        max_new_tokens: int = 512,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> str:
        call = Call("generate_json", list(messages), schema, max_new_tokens, temperature, seed)
        text = self._answer(call)
        if self.check_schema:
            jsonschema.validate(json.loads(text), schema)
        return text

    def score(self, messages: Sequence[ChatMessage], continuation: str) -> float:
        call = Call("score", list(messages), continuation=continuation)
        self.calls.append(call)
        if callable(self.scores):
            return self.scores(call)
        if self.scores:
            return self.scores.pop(0)
        return -0.1 * len(continuation)

    def _answer(self, call: Call) -> str:
        self.calls.append(call)
        if not self.replies:
            raise ScriptExhaustedError(
                f"no scripted reply left for {call.kind} #{len(self.calls)}:\n{call.prompt[-500:]}"
            )
        reply = self.replies.pop(0)
        return reply(call) if callable(reply) else reply

    def of_kind(self, kind: str) -> list[Call]:
        """The recorded calls of one kind, in order."""
        return [c for c in self.calls if c.kind == kind]
