"""The lazy model wrapper loads nothing until a method is called, and loads once."""

from __future__ import annotations

from diffusellm.models.lazy import LazyTextGenerator
from tests.fakes.scripted_llm import ScriptedLLM


def test_loads_on_first_use_only_once() -> None:
    loads: list[int] = []

    def load() -> ScriptedLLM:
        loads.append(1)
        return ScriptedLLM(replies=["one", "two"])

    lazy = LazyTextGenerator(load)
    assert not lazy.loaded and loads == []
    assert lazy.generate([{"role": "user", "content": "hi"}]) == "one"
    assert lazy.generate([{"role": "user", "content": "hi"}]) == "two"
    assert lazy.loaded and loads == [1]
