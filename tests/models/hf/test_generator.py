"""Tests for the transformers backend on the real embedded SmolLM2-135M-Instruct.

Loading and its GGUF cache, generation, scoring, 4-bit loading and LoRA.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from diffusellm.models.base import ChatMessage, ModelError, TextGenerator
from diffusellm.models.hf.generator import HFTextGenerator
from diffusellm.models.hf.load import embedded_gguf, file_digest
from diffusellm.models.settings import TransformersLLM

FRANCE: list[ChatMessage] = [{"role": "user", "content": "What is the capital of France?"}]


def test_first_load_converts_the_gguf_and_later_loads_reuse_the_copy(
    smollm: HFTextGenerator, llm_state: Path
) -> None:
    gguf = embedded_gguf("embedded:smollm2-135m")
    folder = llm_state / "models" / f"{gguf.stem}-{file_digest(gguf)[:16]}"
    assert smollm.load_report.source == "converted" and smollm.load_report.folder == folder
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())
    again = HFTextGenerator.load(TransformersLLM(), llm_state)
    assert again.load_report.source == "cache" and again.load_report.folder == folder
    assert again.generate(FRANCE, max_new_tokens=12) == smollm.generate(FRANCE, max_new_tokens=12)


def test_the_embedded_model_is_a_text_generator_on_the_cpu(smollm: HFTextGenerator) -> None:
    generator: TextGenerator = smollm
    info = generator.info()
    assert (info.backend, info.device, info.dtype) == ("transformers", "cpu", "float32")
    assert info.parameters == 134_515_008 and torch.get_num_threads() == 1


def test_generate_answers_through_the_chat_template(smollm: HFTextGenerator) -> None:
    assert "Paris" in smollm.generate(FRANCE, max_new_tokens=16)


def test_stop_strings_end_the_reply_before_them(smollm: HFTextGenerator) -> None:
    full = smollm.generate(FRANCE, max_new_tokens=16)
    cut = smollm.generate(FRANCE, max_new_tokens=16, stop=["Paris"])
    assert "Paris" not in cut and full.startswith(cut) and len(cut) < len(full)


def test_seeded_sampling_repeats_and_seeds_differ(smollm: HFTextGenerator) -> None:
    def sample(seed: int) -> str:
        return smollm.generate(FRANCE, max_new_tokens=12, temperature=1.2, seed=seed)

    first = sample(7)
    assert sample(7) == first
    assert any(sample(seed) != first for seed in (1, 2, 3))


def test_score_prefers_a_sensible_reply_and_matches_a_manual_forward(smollm: HFTextGenerator) -> None:
    sensible = "The capital of France is Paris."
    good = smollm.score(FRANCE, sensible)
    assert good > smollm.score(FRANCE, "Purple seven banana under clock.") + 10
    assert smollm.score(FRANCE, "") == 0.0
    tok = smollm.tokenizer
    prompt = list(tok.apply_chat_template(FRANCE, add_generation_prompt=True, return_dict=True)["input_ids"])
    reply = list(tok(sensible, add_special_tokens=False)["input_ids"])
    with torch.inference_mode():
        logits = smollm.model(input_ids=torch.tensor([prompt + reply])).logits[0]
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    manual = sum(float(logprobs[len(prompt) + i - 1, t]) for i, t in enumerate(reply))
    assert good == pytest.approx(manual, abs=1e-3)


def test_replies_scored_against_a_kept_prompt_match_scores_from_scratch(smollm: HFTextGenerator) -> None:
    """Ranking options scores many replies to one prompt: the prompt is read once and kept; every
    score must still equal one forward pass over prompt and reply together, whatever came before."""
    other = [{"role": "user", "content": "Name a colour."}]
    replies = ["The capital of France is Paris.", "Blue.", "Purple seven banana under clock.", "P"]

    def from_scratch(messages: list[dict[str, str]], reply: str) -> float:
        prompt = list(smollm.tokenizer(smollm.prompt_text(messages), add_special_tokens=False)["input_ids"])
        ids = list(smollm.tokenizer(reply, add_special_tokens=False)["input_ids"])
        with torch.inference_mode():
            logits = smollm.model(input_ids=torch.tensor([prompt + ids])).logits[0]
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        return sum(float(logprobs[len(prompt) + i - 1, t]) for i, t in enumerate(ids))

    expected = {(id(m), r): from_scratch(m, r) for m in (FRANCE, other) for r in replies}
    for messages in (FRANCE, FRANCE, other, FRANCE, other, other):  # kept, replaced, kept again
        for reply in (*replies, *reversed(replies)):
            assert smollm.score(messages, reply) == pytest.approx(expected[(id(messages), reply)], abs=1e-3)
    smollm.generate(FRANCE, max_new_tokens=4)  # lets the kept prompt go; the next score reads it anew
    assert smollm.score(FRANCE, replies[0]) == pytest.approx(expected[(id(FRANCE), replies[0])], abs=1e-3)


def test_requests_beyond_the_context_limit_fail_before_running(smollm: HFTextGenerator) -> None:
    small = HFTextGenerator(smollm.model, smollm.tokenizer, TransformersLLM(max_context_tokens=64),
                            smollm.load_report)
    with pytest.raises(ModelError, match="max_context_tokens=64"):
        small.generate(FRANCE, max_new_tokens=60)
    with pytest.raises(ModelError, match="max_context_tokens=64"):
        small.score(FRANCE, "Paris. " * 40)


def test_nothing_is_ever_downloaded(tmp_path: Path) -> None:
    for model in ("HuggingFaceTB/SmolLM2-135M-Instruct", str(tmp_path / "missing-folder")):
        with pytest.raises(ModelError, match="nothing is downloaded"):
            HFTextGenerator.load(TransformersLLM(model=model), tmp_path)
    with pytest.raises(ModelError, match="unknown embedded model"):
        HFTextGenerator.load(TransformersLLM(model="embedded:gpt-9"), tmp_path)


def test_a_4bit_load_runs_on_the_cpu(smollm: HFTextGenerator, llm_state: Path) -> None:
    from bitsandbytes.nn.modules import Linear4bit

    quantised = HFTextGenerator.load(TransformersLLM(load_in="4bit"), llm_state)
    layers = [m for m in quantised.model.modules() if isinstance(m, Linear4bit)]
    assert len(layers) == 30 * 7  # every projection of the 30 decoder layers
    assert "load_in=4bit" in quantised.info().details and quantised.info().parameters == smollm.info().parameters
    assert "Paris" in quantised.generate(FRANCE, max_new_tokens=16)


def _save_lora(llm_state: Path, target: Path, *, random_b: bool) -> Path:
    from peft import LoraConfig, get_peft_model

    base = HFTextGenerator.load(TransformersLLM(), llm_state).model  # a copy of its own to wrap
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                        init_lora_weights=not random_b)
    torch.random.manual_seed(0)  # pyright: ignore[reportUnknownMemberType]
    get_peft_model(base, config).save_pretrained(str(target))
    return target


def test_lora_adapters_change_the_model_and_an_identity_adapter_does_not(
    smollm: HFTextGenerator, llm_state: Path, tmp_path: Path
) -> None:
    reply = "The capital of France is Paris."
    random_lora = _save_lora(llm_state, tmp_path / "random", random_b=True)
    identity_lora = _save_lora(llm_state, tmp_path / "identity", random_b=False)
    adapted = HFTextGenerator.load(TransformersLLM(adapters=[str(random_lora)]), llm_state)
    same = HFTextGenerator.load(TransformersLLM(adapters=[str(identity_lora)]), llm_state)
    assert abs(adapted.score(FRANCE, reply) - smollm.score(FRANCE, reply)) > 0.1
    assert same.score(FRANCE, reply) == pytest.approx(smollm.score(FRANCE, reply), abs=1e-3)
    with pytest.raises(ModelError, match="adapter_config.json"):
        HFTextGenerator.load(TransformersLLM(adapters=[str(tmp_path)]), llm_state)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_the_gpu_the_model_runs_in_bfloat16(llm_state: Path) -> None:
    gpu = HFTextGenerator.load(TransformersLLM(device="auto"), llm_state)
    info = gpu.info()
    assert info.device.startswith("cuda") and info.dtype == "bfloat16"
    assert "Paris" in gpu.generate(FRANCE, max_new_tokens=16)
    schema = {"type": "object", "properties": {"city": {"enum": ["Paris", "Lyon"]}}, "required": ["city"]}
    assert json.loads(gpu.generate_json(FRANCE, schema, max_new_tokens=16))["city"] in ("Paris", "Lyon")
    assert gpu.score(FRANCE, "Paris.") > gpu.score(FRANCE, "Banana seven.")
