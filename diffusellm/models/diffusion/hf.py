"""Generation, diffusion core: LLaDA-, Dream- and DiffuCoder-style masked-diffusion models through transformers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

from diffusellm.errors import InputError
from diffusellm.models.base import ModelError, ModelInfo, Scaffold
from diffusellm.models.diffusion.sampler import MaskedDiffusionSampler, SampleResult, int_list, shift_logits
from diffusellm.models.diffusion.scaffold import hole_text, tokenise_scaffold
from diffusellm.models.settings import DiffusionSettings

SHIFTED_MODEL_TYPES = frozenset({"dream"})
"""`model_type`s (lower case) whose logits are shifted by one position: Dream, and DiffuCoder built on it."""
END_TOKENS = ("<|endoftext|>", "<|end_of_text|>", "<|eot_id|>", "<|im_end|>", "<|dlm_pad|>", "<|mdm_pad|>")
"""Tokens that end a hole's text when a tokenizer has them, besides its own eos, pad and sep tokens."""
_AUTO_CLASSES = (
    ("AutoModelForMaskedLM", AutoModelForMaskedLM),
    ("AutoModel", AutoModel),
    ("AutoModelForCausalLM", AutoModelForCausalLM),
)
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class Denoised:
    """One fill: the final token ids, each hole's span in them, each hole's text and the sampler's trace."""

    ids: list[int]
    holes: list[tuple[int, int]]
    texts: list[str]
    sample: SampleResult | None


class HFDenoiser:
    """A `Denoiser` over a transformers masked-diffusion checkpoint; build it with `load_hf_denoiser`."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        settings: DiffusionSettings,
        mask_id: int,
        logits_shift: bool,
        max_length: int | None,
    ) -> None:
        self._model = model
        self._tokenizer = tokenizer
        self._settings = settings
        self._shift = logits_shift
        self._max_length = max_length
        self._device: torch.device = next(model.parameters()).device
        self._stop_ids = _stop_ids(tokenizer, mask_id)
        self.sampler = MaskedDiffusionSampler(
            self._logits,
            mask_id,
            steps=settings.steps,
            block_length=settings.block_length,
            temperature=settings.temperature,
        )

    def info(self) -> ModelInfo:
        """What is loaded and where it runs."""
        parameters = sum(int(p.numel()) for p in self._model.parameters())
        details = (
            f"mask id {self.sampler.mask_id}; logits shift {'on' if self._shift else 'off'}; "
            f"{self._settings.steps} steps, blocks of {self._settings.block_length}"
        )
        dtype = str(next(self._model.parameters()).dtype).removeprefix("torch.")
        return ModelInfo(
            name=self._settings.model,
            backend="transformers",
            device=str(self._device),
            dtype=dtype,
            parameters=parameters,
            details=details,
        )

    def fill(
        self,
        scaffold: Scaffold,
        *,
        context: str = "",
        steps: int | None = None,
        temperature: float | None = None,
        seed: int | None = None,
    ) -> list[str]:
        """The text of each hole, in order; `temperature` None means the configured one."""
        return self.denoise(scaffold, context=context, steps=steps, temperature=temperature, seed=seed).texts

    def denoise(
        self,
        scaffold: Scaffold,
        *,
        context: str = "",
        steps: int | None = None,
        temperature: float | None = None,
        seed: int | None = None,
    ) -> Denoised:
        """Fill the holes of `scaffold` after the fixed prefix `context`; the whole sequence and trace kept."""
        tokens = tokenise_scaffold(
            scaffold, encode=self._encode, mask_id=self.sampler.mask_id, prefix=self._prefix(context)
        )
        if not tokens.holes:
            return Denoised(ids=tokens.ids, holes=[], texts=[], sample=None)
        if self._max_length is not None and len(tokens.ids) > self._max_length:
            raise ModelError(
                f"context and scaffold come to {len(tokens.ids)} tokens; the model takes at most {self._max_length}",
                hint="shorten the context or give the holes fewer max_tokens",
            )
        ids = torch.tensor(tokens.ids, dtype=torch.long, device=self._device)
        sample = self.sampler.sample(ids, steps=steps, temperature=temperature, seed=seed)
        filled = int_list(sample.ids.cpu())
        texts = [hole_text(filled, span, stop_ids=self._stop_ids, decode=self._decode) for span in tokens.holes]
        return Denoised(ids=filled, holes=tokens.holes, texts=texts, sample=sample)

    def _prefix(self, context: str) -> list[int]:
        start = self._tokenizer.bos_token_id
        if start is None:
            start = self._tokenizer.cls_token_id
        prefix = [] if start is None else [int(start)]
        encoded = self._encode(context)
        if self.sampler.mask_id in encoded:
            raise InputError(
                "the context contains the model's mask token", hint="remove the mask token from the context text"
            )
        return prefix + encoded

    def _encode(self, text: str) -> list[int]:
        if not text:
            return []
        return [int(i) for i in self._tokenizer(text, add_special_tokens=False)["input_ids"]]

    def _decode(self, ids: list[int]) -> str:
        return str(self._tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False))

    def _logits(self, ids: torch.Tensor) -> torch.Tensor:
        output = self._model(input_ids=ids)
        logits: torch.Tensor | None = getattr(output, "logits", None)
        if logits is None:
            raise ModelError(
                f"{self._settings.model} returns no logits: it is an encoder without a token head",
                hint="use a masked-LM or diffusion checkpoint (LLaDA, Dream, DiffuCoder, a *ForMaskedLM)",
            )
        return shift_logits(logits) if self._shift else logits


def load_hf_denoiser(settings: DiffusionSettings) -> HFDenoiser:
    """Load tokenizer and model named by `settings` onto their device, ready to fill scaffolds."""
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    device = resolve_device(settings.device)
    remote = settings.trust_remote_code
    config = _from_pretrained(AutoConfig, settings, trust_remote_code=remote)
    tokenizer = _from_pretrained(AutoTokenizer, settings, trust_remote_code=remote)
    model_class = pick_model_class(config, trusted=remote)
    model = _from_pretrained(
        model_class, settings, config=config, trust_remote_code=remote, dtype=resolve_dtype(settings.dtype, device)
    )
    model = model.to(device).eval()
    shift = settings.logits_shift if settings.logits_shift is not None else uses_shifted_logits(config)
    return HFDenoiser(
        model,
        tokenizer,
        settings=settings,
        mask_id=find_mask_id(settings, tokenizer, config),
        logits_shift=shift,
        max_length=_max_length(config),
    )


def resolve_device(name: str) -> torch.device:
    """`auto` is the first CUDA device when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(
            f"diffusion.device is {name} but torch sees no CUDA device",
            hint="set diffusion.device to cpu or auto, or install a CUDA build of torch",
        )
    return torch.device(name)


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """`auto` is bfloat16 on CUDA (half the memory, native on recent GPUs) and float32 elsewhere."""
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return _DTYPES[name]


def pick_model_class(config: Any, *, trusted: bool) -> Any:
    """The auto class for a checkpoint: the first of masked-LM, bare model, causal-LM its own code maps.

    Built-in masked LMs (BERT, ModernBERT) load with their head through AutoModelForMaskedLM; LLaDA, Dream
    and DiffuCoder ship code mapped under AutoModel, whose class already returns logits. Untrusted, the
    checkpoint's map is ignored: transformers would build its own bare class for that key, without a head.
    """
    auto_map: dict[str, Any] = (getattr(config, "auto_map", None) or {}) if trusted else {}
    for key, auto_class in _AUTO_CLASSES:
        if key in auto_map:
            return auto_class
    return AutoModelForMaskedLM


def uses_shifted_logits(config: Any) -> bool:
    """Whether the checkpoint's output at position i predicts the token at i + 1 (Dream and DiffuCoder do)."""
    return str(getattr(config, "model_type", "")).lower() in SHIFTED_MODEL_TYPES


def find_mask_id(settings: DiffusionSettings, tokenizer: Any, config: Any) -> int:
    """The mask token id: from settings, else the tokenizer's mask token, else the model config's `mask_token_id`."""
    for found in (
        settings.mask_token_id,
        getattr(tokenizer, "mask_token_id", None),
        getattr(config, "mask_token_id", None),
    ):
        if found is not None:
            return int(found)
    raise ModelError(
        f"{settings.model} names no mask token in its tokenizer or config",
        hint="set diffusion.mask_token_id to the id the model was trained to denoise",
    )


def _stop_ids(tokenizer: Any, mask_id: int) -> frozenset[int]:
    ids = {mask_id}
    for name in ("eos_token_id", "pad_token_id", "sep_token_id"):
        value = getattr(tokenizer, name, None)
        if isinstance(value, int):
            ids.add(value)
    vocab: dict[str, int] = tokenizer.get_vocab()
    ids.update(vocab[token] for token in END_TOKENS if token in vocab)
    return frozenset(ids)


def _max_length(config: Any) -> int | None:
    for name in ("max_position_embeddings", "max_sequence_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _from_pretrained(auto_class: Any, settings: DiffusionSettings, **kwargs: Any) -> Any:
    """`auto_class.from_pretrained(settings.model, ...)`, its failures turned into a `ModelError` with a hint."""
    try:
        return auto_class.from_pretrained(settings.model, **kwargs)
    except (OSError, ValueError, KeyError, ImportError) as error:
        what = getattr(auto_class, "__name__", "checkpoint")
        if "trust_remote_code" in str(error):
            hint = "this checkpoint ships its own model code; set diffusion.trust_remote_code: true if you trust it"
        else:
            hint = "check diffusion.model: a folder with config.json, tokenizer files and weights, or a hub id"
        raise ModelError(f"could not load {what} from {settings.model}: {error}", hint=hint) from error
