"""LLM core, diagnostics: the rows `diffusellm models check` reports for each configured model.

Where it runs, how big it is, how long it took to load, and how fast it generates.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from diffusellm.errors import DiffuseLLMError
from diffusellm.models.abilities import generated_tokens
from diffusellm.models.base import ChatMessage, TextGenerator
from diffusellm.models.llm import load_llm
from diffusellm.models.settings import LLMSettings

CHECK_PROMPT: list[ChatMessage] = [
    {"role": "user", "content": "Write one sentence about version control."},
]


def _load_kind(generator: TextGenerator) -> str:
    """`cold` (a GGUF was converted now), `cached` (its converted copy was reused), or `n/a`."""
    report = getattr(generator, "load_report", None)
    source = getattr(report, "source", None)
    return {"converted": "cold", "cache": "cached", "folder": "folder"}.get(str(source), "n/a")


def check_model(
    role: str, settings: LLMSettings, state_dir: Path, *, max_new_tokens: int = 32
) -> dict[str, Any]:
    """Load one model, run one short greedy generation, and describe both."""
    row: dict[str, Any] = {"role": role, "backend": settings.type, "model": settings.model}
    try:
        started = time.perf_counter()
        generator = load_llm(settings, state_dir)
        row["load_wall_s"] = round(time.perf_counter() - started, 3)  # with imports
        report = getattr(generator, "load_report", None)
        row["load_s"] = round(float(getattr(report, "seconds", row["load_wall_s"])), 3)
        info = generator.info()
        row.update(
            name=info.name,
            device=info.device,
            dtype=info.dtype,
            parameters=info.parameters,
            load=_load_kind(generator),
        )
        started = time.perf_counter()
        text = generator.generate(CHECK_PROMPT, max_new_tokens=max_new_tokens)
        seconds = time.perf_counter() - started
    except DiffuseLLMError as exc:
        row["error"] = str(exc)
        return row
    tokens = generated_tokens(generator, text)
    row.update(
        generate_s=round(seconds, 3),
        new_tokens=tokens,
        sample=text[:120],
        tokens_per_s=round(tokens / seconds, 2) if tokens and seconds > 0 else None,
    )
    return row


def check_models(
    models: Mapping[str, LLMSettings], state_dir: Path, *, max_new_tokens: int = 32
) -> list[dict[str, Any]]:
    """One row per configured model (`{"llm": ..., "scorer": ...}`), in order; a model that fails
    to load or run gets an `error` entry instead of figures, and the others are still checked."""
    return [
        check_model(role, settings, state_dir, max_new_tokens=max_new_tokens)
        for role, settings in models.items()
    ]
