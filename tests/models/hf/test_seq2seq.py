"""The transformers backend with an encoder-decoder (seq2seq) model: a tiny randomly initialised T5
built in the test (with the embedded model's tokenizer) loads through the same settings, generates,
scores and writes grammar-constrained JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

from diffusellm.models.base import ChatMessage, ModelError
from diffusellm.models.hf.generator import HFTextGenerator
from diffusellm.models.hf.load import converted_folder, embedded_gguf
from diffusellm.models.settings import EMBEDDED_DEFAULT, TransformersLLM

ASK: list[ChatMessage] = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": "Which function should change?"},
]


@pytest.fixture(scope="module")
def tiny_t5(llm_state: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer T5 with random weights and SmolLM2's tokenizer (no chat template), saved to a folder."""
    source, _ = converted_folder(embedded_gguf(EMBEDDED_DEFAULT), llm_state)
    auto: Any = AutoTokenizer
    tokenizer = auto.from_pretrained(source, local_files_only=True)
    tokenizer.chat_template = None
    eos = int(tokenizer.eos_token_id)
    t5_config: Any = T5Config
    config = t5_config(
        vocab_size=len(tokenizer),
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_heads=2,
        decoder_start_token_id=eos,
        pad_token_id=eos,
        eos_token_id=eos,
    )
    folder = tmp_path_factory.mktemp("tiny-t5")
    model: Any = T5ForConditionalGeneration(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def seq2seq(tiny_t5: Path, llm_state: Path) -> HFTextGenerator:
    return HFTextGenerator.load(TransformersLLM(model=str(tiny_t5), device="cpu"), llm_state)


def test_a_seq2seq_folder_loads_as_an_encoder_decoder(seq2seq: HFTextGenerator) -> None:
    assert seq2seq.encoder_decoder
    assert seq2seq.prompt_text(ASK) == "Answer briefly.\n\nWhich function should change?"
    info = seq2seq.info()
    assert info.backend == "transformers" and info.parameters is not None and info.parameters < 5_000_000


def test_generation_returns_only_the_reply_within_the_token_limit(seq2seq: HFTextGenerator) -> None:
    reply = seq2seq.generate(ASK, max_new_tokens=6)
    assert isinstance(reply, str) and seq2seq.count_tokens(reply) <= 6
    assert "Which function" not in reply, "the prompt is the encoder's input, not part of the reply"
    assert seq2seq.generate(ASK, max_new_tokens=6) == reply  # greedy: the same every time


def test_scores_are_log_likelihoods_of_the_reply(seq2seq: HFTextGenerator) -> None:
    one = seq2seq.score(ASK, "slugify")
    two = seq2seq.score(ASK, "slugify slugify slugify")
    assert math.isfinite(one) and one < 0 and two < one  # more tokens: a smaller probability
    assert seq2seq.score(ASK, "slugify") == pytest.approx(one)
    assert seq2seq.score(ASK, "") == 0.0
    with pytest.raises(ModelError, match="encoder-decoder"):
        seq2seq.text_logprobs("raw text")


def test_json_from_the_decoder_is_valid_by_construction(seq2seq: HFTextGenerator) -> None:
    schema = {
        "type": "object",
        "properties": {"op": {"enum": ["rename_symbol", "edit_function"]}, "target": {"enum": ["a.b", "a.c"]}},
        "required": ["op", "target"],
        "additionalProperties": False,
    }
    for seed in range(3):
        answer = json.loads(seq2seq.generate_json(ASK, schema, max_new_tokens=40, temperature=1.0, seed=seed))
        assert answer["op"] in ("rename_symbol", "edit_function") and answer["target"] in ("a.b", "a.c")
