"""Tests for `diffusellm models check`: one row per configured model, real loads and generations."""

from __future__ import annotations

from pathlib import Path

from diffusellm.models.check import check_models
from diffusellm.models.hf.generator import HFTextGenerator
from diffusellm.models.serve import RunningServer
from diffusellm.models.settings import OpenAILLM, TransformersLLM
from tests.models.conftest import SERVED_NAME


def test_check_reports_each_model_and_keeps_going_past_a_broken_one(
    smollm: HFTextGenerator, smollm_server: RunningServer, llm_state: Path, tmp_path: Path
) -> None:
    rows = check_models(
        {
            "llm": TransformersLLM(),
            "broken": TransformersLLM(model=str(tmp_path / "no-such-model")),
            "scorer": OpenAILLM(base_url=smollm_server.base_url, model=SERVED_NAME, api_key_env=None),
        },
        llm_state,
        max_new_tokens=8,
    )
    local, broken, remote = rows
    assert [r["role"] for r in rows] == ["llm", "broken", "scorer"]
    assert local["backend"] == "transformers" and local["load"] == "cached"  # the session converted it
    assert (local["device"], local["dtype"], local["parameters"]) == ("cpu", "float32", 134_515_008)
    assert 0 < local["new_tokens"] <= 8 and local["tokens_per_s"] > 0 and local["load_s"] > 0
    assert "no-such-model" in broken["error"] and "load_s" not in broken
    assert remote["backend"] == "openai" and remote["device"] == f"remote {smollm_server.base_url}"
    assert remote["sample"] == local["sample"] and remote["new_tokens"] == local["new_tokens"]
