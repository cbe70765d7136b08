"""Phase 8, LoRA training: fine-tune the transformers LLM on chat examples into a peft adapter folder.

The folder is what `TransformersLLM.adapters` loads. A plain torch loop (AdamW, batch size 1) on the
configured base model; the adapter appears at `out_dir` only once it is complete.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from diffusellm.errors import InputError
from diffusellm.learn.dataset import ChatExample
from diffusellm.learn.lora_data import Encoded, encode_examples
from diffusellm.learn.quality import training_warnings
from diffusellm.learn.settings import LoraSettings
from diffusellm.models.base import ModelError
from diffusellm.models.hf.load import LoadReport, load_model
from diffusellm.models.settings import TransformersLLM

__all__ = ["ChatExample", "LoraSettings", "TrainResult", "train_lora"]

Progress = Callable[[int, float], None]
"""Called after each step with the step number (from 1) and that step's loss."""


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced."""

    adapter_dir: Path
    examples: int
    steps: int
    first_loss: float
    """Mean loss over the first pass through the examples (see `loss_ends`)."""
    last_loss: float
    """Mean loss over the last pass (see `loss_ends`)."""
    seconds: float
    """The whole run: loading, training and saving."""
    warnings: tuple[str, ...] = ()
    """What is wrong with the training set (too few examples, stub replies); also in `training.json`."""


def train_lora(
    llm: TransformersLLM,
    state_dir: Path,
    examples: Sequence[ChatExample],
    out_dir: Path,
    settings: LoraSettings,
    *,
    progress: Progress | None = None,
) -> TrainResult:
    """Train a LoRA adapter for `llm.model` on `examples` and save it as the new folder `out_dir`.

    The adapter is trained on the base weights alone (`llm.adapters` are not applied), so it replaces
    earlier adapters rather than stacking on them. Loss is on the replies only. `out_dir` must not
    exist; a failed or interrupted run leaves no `out_dir` behind.
    """
    _check_request(llm, examples, out_dir)
    started = time.perf_counter()
    previous_threads = torch.get_num_threads()
    base = llm.model_copy(update={"adapters": [], "threads": settings.threads})
    try:
        model, tokenizer, report = _load(base, state_dir)
        encoded = encode_examples(tokenizer, examples, settings.max_tokens)
        rng: Any = torch.random  # the global generators are restored afterwards
        with rng.fork_rng(devices=_cuda_devices(model)):
            torch.manual_seed(settings.seed)  # pyright: ignore[reportUnknownMemberType]
            peft_model = _wrap(model, settings, llm.model)
            trained = time.perf_counter()
            losses = _train(peft_model, encoded, settings, progress)
            train_seconds = time.perf_counter() - trained
    finally:
        torch.set_num_threads(previous_threads)
    record = _record(llm, settings, report.folder, str(peft_model.device), encoded, losses)
    warnings = training_warnings(examples)
    record.update(train_seconds=round(train_seconds, 3), seconds=round(time.perf_counter() - started, 3),
                  warnings=warnings)
    save_adapter(peft_model, out_dir, record)
    seconds = time.perf_counter() - started
    return TrainResult(out_dir, len(examples), len(losses), record["first_loss"], record["last_loss"], seconds,
                       tuple(warnings))


def _record(
    llm: TransformersLLM, settings: LoraSettings, folder: Path, device: str, encoded: list[Encoded], losses: list[float]
) -> dict[str, Any]:
    """The `training.json` of a run, without its timings."""
    first, last = loss_ends(losses, len(encoded))
    return {
        "base_model": llm.model,
        "base_folder": str(folder),
        "device": device,
        "settings": settings.model_dump(),
        "examples": len(encoded),
        "tokens": sum(len(e.input_ids) for e in encoded),
        "steps": len(losses),
        "first_loss": first,
        "last_loss": last,
        "losses": [round(value, 6) for value in losses],
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _check_request(llm: TransformersLLM, examples: Sequence[ChatExample], out_dir: Path) -> None:
    """Refuse what cannot work before loading anything."""
    if out_dir.exists():
        raise InputError(
            f"the adapter folder {out_dir} already exists",
            hint="give a new folder; a trained adapter is never overwritten (delete it first to retrain)",
        )
    if not examples:
        raise InputError(
            "no training examples given",
            hint="accept some runs first (`diffusellm learn sync` or `diffusellm learn accept JOB`)",
        )
    if llm.load_in != "none":
        raise ModelError(
            f"cannot train a LoRA adapter on a model loaded with load_in={llm.load_in}",
            hint="training on quantised weights (QLoRA) is not supported yet; train with load_in: none "
            "(the same model unquantised) and keep load_in for serving",
        )


def _load(llm: TransformersLLM, state_dir: Path) -> tuple[Any, Any, LoadReport]:
    try:
        return load_model(llm, state_dir)
    except RuntimeError as exc:  # out of memory moving the weights to the device, and the like
        raise ModelError(
            f"cannot load {llm.model} on {llm.device} for LoRA training: {exc}",
            hint="train on a device with more free memory, or stop what else holds it",
        ) from exc


def _cuda_devices(model: Any) -> list[torch.device]:
    device = torch.device(model.device)
    return [device] if device.type == "cuda" else []


def _wrap(model: Any, settings: LoraSettings, name: str) -> Any:
    """`model` with trainable LoRA matrices on `settings.target_modules`, the rest frozen."""
    from peft import LoraConfig, TaskType, get_peft_model

    config = LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules),
    )
    try:
        return get_peft_model(model, config)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise ModelError(
            f"cannot add LoRA adapters to {name}: {exc}",
            hint="target_modules must name linear layers of the model (q_proj, k_proj, v_proj, o_proj, "
            "gate_proj, up_proj, down_proj in Llama/Qwen-style models)",
        ) from exc


def _train(model: Any, encoded: list[Encoded], settings: LoraSettings, progress: Progress | None) -> list[float]:
    """`settings.steps` optimiser steps, one example each, cycling through `encoded`; the losses."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=settings.learning_rate)
    model.train()
    losses: list[float] = []
    for step in range(1, settings.steps + 1):
        loss = _step(model, optimizer, encoded[(step - 1) % len(encoded)], step, settings.steps)
        losses.append(loss)
        if progress is not None:
            progress(step, loss)
    model.eval()
    return losses


def _step(model: Any, optimizer: torch.optim.Optimizer, example: Encoded, step: int, steps: int) -> float:
    """One forward, backward and update on one example; its loss."""
    device = torch.device(model.device)
    try:
        ids = torch.tensor([example.input_ids], device=device)
        labels = torch.tensor([example.labels], device=device)
        loss: torch.Tensor = model(input_ids=ids, labels=labels, use_cache=False).loss
        value = float(loss.detach().float())
        if value != value or value in (float("inf"), float("-inf")):
            raise ModelError(
                f"the LoRA training loss became {value} at step {step} of {steps}",
                hint="lower learn.lora.learning_rate",
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # pyright: ignore[reportUnknownMemberType]
        optimizer.step()
    except RuntimeError as exc:  # torch.OutOfMemoryError is one
        raise ModelError(
            f"LoRA training step {step} of {steps} failed on {device} "
            f"({len(example.input_ids)} tokens): {exc}",
            hint="lower learn.lora.max_tokens or rank, or train on a device with more memory",
        ) from exc
    return value


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def loss_ends(losses: list[float], examples: int) -> tuple[float, float]:
    """Mean loss of the first and of the last pass through the examples: windows of `examples` steps,
    at most half the run each, so a run shorter than a pass still compares its start with its end."""
    window = max(1, min(examples, len(losses) // 2))
    return _mean(losses[:window]), _mean(losses[-window:])


def save_adapter(model: Any, out_dir: Path, record: dict[str, Any]) -> None:
    """Write the adapter and `training.json` into a temporary sibling folder, then rename it to `out_dir`."""
    temporary = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(temporary, ignore_errors=True)
        model.save_pretrained(str(temporary))
        text = json.dumps(record, indent=2, sort_keys=True) + "\n"
        (temporary / "training.json").write_text(text, encoding="utf-8")
        if out_dir.exists():
            raise FileExistsError(f"{out_dir} appeared while training")
        temporary.rename(out_dir)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelError(
            f"cannot save the LoRA adapter to {out_dir}: {exc}",
            hint="check the folder's parent is writable and has free space, and that nothing else writes there",
        ) from exc
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
