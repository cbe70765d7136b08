"""Fixtures for the LoRA tests: a session state folder holding the embedded SmolLM2, converted once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from transformers import AutoTokenizer

from diffusellm.models.hf.load import converted_folder, embedded_gguf
from diffusellm.models.settings import EMBEDDED_DEFAULT
from tests.conftest import seed_converted_model


@pytest.fixture(scope="session")
def lora_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state folder with the embedded GGUF already converted (linked to the checkout's one copy)."""
    state = tmp_path_factory.mktemp("lora-state")
    seed_converted_model(state)
    return state


@pytest.fixture(scope="session")
def smollm_tokenizer(lora_state: Path) -> Any:
    """The embedded model's tokenizer, with its ChatML template."""
    folder, _ = converted_folder(embedded_gguf(EMBEDDED_DEFAULT), lora_state)
    auto: Any = AutoTokenizer
    return auto.from_pretrained(folder, local_files_only=True)
