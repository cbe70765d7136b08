"""Tests for LoRA training on the real embedded SmolLM2-135M-Instruct: labels, training, refusals, clean failure."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from diffusellm.errors import InputError
from diffusellm.learn.lora import ChatExample, LoraSettings, TrainResult, loss_ends, train_lora
from diffusellm.learn.lora_data import IGNORE_INDEX, encode_examples, example_tokens, label_tokens
from diffusellm.models.base import ChatMessage, ModelError
from diffusellm.models.hf.generator import HFTextGenerator
from diffusellm.models.settings import TransformersLLM

PHRASE = "Purple walrus juggles seven lanterns."
QUESTIONS = ["What is the secret phrase?", "Tell me the password.", "Say the magic words."]
EXAMPLES = [ChatExample([{"role": "user", "content": q}], PHRASE) for q in QUESTIONS]
ASKED: list[ChatMessage] = [{"role": "user", "content": QUESTIONS[0]}]
QUICK = LoraSettings(steps=12, learning_rate=2e-3)
CPU = TransformersLLM(device="cpu")


@dataclass(frozen=True)
class Trained:
    result: TrainResult
    steps_seen: list[tuple[int, float]]
    threads_after: int


@pytest.fixture(scope="module")
def trained(lora_state: Path, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """An adapter trained on three prompts that all want the same unusual reply."""
    out = tmp_path_factory.mktemp("adapters") / "walrus"
    seen: list[tuple[int, float]] = []
    result = train_lora(CPU, lora_state, EXAMPLES, out, QUICK, progress=lambda s, loss: seen.append((s, loss)))
    return Trained(result, seen, torch.get_num_threads())


def test_training_lowers_the_loss_and_reports_every_step(trained: Trained) -> None:
    result = trained.result
    assert (result.examples, result.steps) == (3, 12)
    assert [step for step, _ in trained.steps_seen] == list(range(1, 13))
    assert result.last_loss < result.first_loss / 3
    assert result.first_loss == pytest.approx(sum(loss for _, loss in trained.steps_seen[:3]) / 3)
    assert trained.threads_after == torch.get_num_threads()


def test_the_saved_adapter_loads_and_prefers_the_learned_reply(trained: Trained, lora_state: Path) -> None:
    folder = trained.result.adapter_dir
    assert (folder / "adapter_config.json").is_file() and (folder / "adapter_model.safetensors").is_file()
    base = HFTextGenerator.load(CPU, lora_state)
    adapted = HFTextGenerator.load(CPU.model_copy(update={"adapters": [str(folder)]}), lora_state)
    assert adapted.score(ASKED, PHRASE) > base.score(ASKED, PHRASE) + 20
    assert adapted.generate(ASKED, max_new_tokens=16).startswith("Purple walrus")
    assert not base.generate(ASKED, max_new_tokens=16).startswith("Purple walrus")


def test_training_json_records_the_run(trained: Trained) -> None:
    record = json.loads((trained.result.adapter_dir / "training.json").read_text())
    assert record["base_model"] == "embedded:smollm2-135m"
    assert (record["examples"], record["steps"]) == (3, 12)
    assert record["settings"] == QUICK.model_dump()
    assert (record["first_loss"], record["last_loss"]) == (trained.result.first_loss, trained.result.last_loss)
    assert record["device"] == "cpu" and record["date"].endswith("+00:00")
    assert record["losses"] == [round(loss, 6) for _, loss in trained.steps_seen], "the loss curve, step by step"
    assert record["warnings"] == list(trained.result.warnings)
    assert "only 3 training example(s)" in record["warnings"][0]
    assert [p.name for p in trained.result.adapter_dir.parent.iterdir()] == ["walrus"]  # no temporary folder


def test_labels_are_ignored_exactly_over_the_prompt(smollm_tokenizer: Any) -> None:
    prompt, reply = example_tokens(smollm_tokenizer, EXAMPLES[0])
    [encoded] = encode_examples(smollm_tokenizer, EXAMPLES[:1], max_tokens=768)
    assert encoded.input_ids == prompt + reply
    assert encoded.labels == [IGNORE_INDEX] * len(prompt) + reply
    assert smollm_tokenizer.decode(prompt).endswith("<|im_start|>assistant\n")
    assert smollm_tokenizer.decode(reply) == PHRASE + "<|im_end|>"  # the model learns to stop, nothing after


def test_long_examples_lose_the_start_of_the_prompt_first() -> None:
    prompt, reply = list(range(100, 140)), list(range(1, 11))
    cut = label_tokens(prompt, reply, max_tokens=32)
    assert cut.input_ids == prompt[-22:] + reply and cut.labels == [IGNORE_INDEX] * 22 + reply
    huge = list(range(1, 41))
    kept = label_tokens(prompt, huge, max_tokens=32)  # a quarter of the room stays for the prompt
    assert kept.input_ids == prompt[-8:] + huge[:24] and kept.labels == [IGNORE_INDEX] * 8 + huge[:24]
    assert label_tokens([], huge, max_tokens=32).labels == huge[:32]


def test_refusals_come_before_any_work(lora_state: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="already exists"):
        train_lora(CPU, lora_state, EXAMPLES, tmp_path, QUICK)
    with pytest.raises(InputError, match="no training examples"):
        train_lora(CPU, lora_state, [], tmp_path / "new", QUICK)
    with pytest.raises(ModelError, match="load_in=4bit") as refused:
        train_lora(CPU.model_copy(update={"load_in": "4bit"}), lora_state, EXAMPLES, tmp_path / "new", QUICK)
    assert "QLoRA" in refused.value.hint
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("reply", ["", "   "])
def test_an_example_without_a_reply_is_refused(lora_state: Path, tmp_path: Path, reply: str) -> None:
    examples = [*EXAMPLES, ChatExample(ASKED, reply)]
    with pytest.raises(InputError, match="example 3 has an empty reply"):
        train_lora(CPU, lora_state, examples, tmp_path / "adapter", QUICK)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_run_leaves_nothing_behind(lora_state: Path, tmp_path: Path) -> None:
    def stop_at_two(step: int, loss: float) -> None:
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_lora(CPU, lora_state, EXAMPLES, tmp_path / "adapter", QUICK, progress=stop_at_two)
    with pytest.raises(ModelError, match="cannot add LoRA adapters.*nope_proj"):
        train_lora(CPU, lora_state, EXAMPLES, tmp_path / "adapter", LoraSettings(target_modules=["nope_proj"]))
    assert list(tmp_path.iterdir()) == []


def test_a_folder_that_appears_while_training_is_not_overwritten(lora_state: Path, tmp_path: Path) -> None:
    out = tmp_path / "adapter"

    def someone_else_writes(step: int, loss: float) -> None:
        out.mkdir(exist_ok=True)
        (out / "theirs.txt").write_text("keep me")

    with pytest.raises(ModelError, match="appeared while training"):
        train_lora(CPU, lora_state, EXAMPLES, out, LoraSettings(steps=1), progress=someone_else_writes)
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"] and [p.name for p in out.iterdir()] == ["theirs.txt"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_the_gpu_training_runs_in_bfloat16_and_the_adapter_works(lora_state: Path, tmp_path: Path) -> None:
    gpu = TransformersLLM(device="cuda")
    result = train_lora(gpu, lora_state, EXAMPLES, tmp_path / "gpu", QUICK)
    assert result.last_loss < result.first_loss / 3
    assert json.loads((result.adapter_dir / "training.json").read_text())["device"].startswith("cuda")
    base = HFTextGenerator.load(gpu, lora_state)
    adapted = HFTextGenerator.load(gpu.model_copy(update={"adapters": [str(result.adapter_dir)]}), lora_state)
    assert adapted.info().dtype == "bfloat16"
    assert adapted.score(ASKED, PHRASE) > base.score(ASKED, PHRASE) + 20


def test_the_loss_ends_compare_the_start_of_a_run_with_its_end() -> None:
    assert loss_ends([4.0, 3.0, 2.0, 1.0, 1.0, 1.0], examples=2) == (3.5, 1.0), "a pass is two steps"
    assert loss_ends([2.8, 2.7, 2.6, 2.5], examples=6) == (2.75, 2.55), "a run shorter than a pass: halves"
    assert loss_ends([2.0], examples=6) == (2.0, 2.0)
