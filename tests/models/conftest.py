"""Shared model fixtures: the embedded SmolLM2 loaded once per session, and a server for it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from diffusellm.models.hf.generator import HFTextGenerator
from diffusellm.models.serve import RunningServer, serving
from diffusellm.models.settings import TransformersLLM

SERVED_NAME = "smollm2-135m"


@pytest.fixture(scope="session")
def llm_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state folder for the session; the embedded GGUF is converted into it once."""
    return tmp_path_factory.mktemp("llm-state")


@pytest.fixture(scope="session")
def smollm(llm_state: Path) -> HFTextGenerator:
    """The embedded SmolLM2-135M-Instruct on the CPU (first load: converts the GGUF)."""
    return HFTextGenerator.load(TransformersLLM(), llm_state)


@pytest.fixture(scope="session")
def smollm_server(smollm: HFTextGenerator) -> Iterator[RunningServer]:
    """`smollm` behind the OpenAI-compatible server, on a free port of 127.0.0.1."""
    with serving(smollm, model_name=SERVED_NAME) as server:
        yield server
