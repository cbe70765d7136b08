"""LLM core: build the configured `TextGenerator` (the abilities backends add are in `abilities`).

Light on purpose: torch and transformers are imported only when a transformers model is loaded.
"""

from __future__ import annotations

from pathlib import Path

from diffusellm.models.base import TextGenerator
from diffusellm.models.settings import LLMSettings, OpenAILLM


def load_llm(settings: LLMSettings, state_dir: Path) -> TextGenerator:
    """The model `settings` describes, loaded and ready (`state_dir` keeps converted weights)."""
    if isinstance(settings, OpenAILLM):
        from diffusellm.models.openai_backend import OpenAITextGenerator

        return OpenAITextGenerator.from_settings(settings)
    from diffusellm.models.hf.generator import HFTextGenerator

    return HFTextGenerator.load(settings, state_dir)
