"""Model fixtures: a server for the embedded SmolLM2 (the model itself is `smollm`, in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from diffusellm.models.hf.generator import HFTextGenerator
from diffusellm.models.serve import RunningServer, serving

SERVED_NAME = "smollm2-135m"


@pytest.fixture(scope="session")
def smollm_server(smollm: HFTextGenerator) -> Iterator[RunningServer]:
    """`smollm` behind the OpenAI-compatible server, on a free port of 127.0.0.1."""
    with serving(smollm, model_name=SERVED_NAME) as server:
        yield server
