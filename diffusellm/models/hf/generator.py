"""LLM core, transformers backend: a `TextGenerator` running a causal or encoder-decoder (seq2seq) LM
in this process.

Free text, grammar-constrained JSON and log-likelihood scores; nothing is ever downloaded. A seq2seq
model reads the prompt with its encoder and writes the reply with its decoder; without a chat template
its messages are joined as plain text.
"""

from __future__ import annotations

import inspect
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList

from diffusellm.models.abilities import TokenLogprob, sum_logprobs
from diffusellm.models.base import ChatMessage, ModelError, ModelInfo
from diffusellm.models.hf.load import LoadReport, load_model
from diffusellm.models.settings import TransformersLLM

if TYPE_CHECKING:
    from diffusellm.models.hf.grammar import SchemaGrammars


class HFTextGenerator:
    """A causal LLM loaded with transformers; one call at a time (calls are serialised)."""

    def __init__(
        self, model: Any, tokenizer: Any, settings: TransformersLLM, report: LoadReport
    ) -> None:
        """`model`: a transformers causal or seq2seq LM; `tokenizer`: its tokenizer (a causal model's
        with a chat template)."""
        self.encoder_decoder = bool(getattr(model.config, "is_encoder_decoder", False))
        if not tokenizer.chat_template and not self.encoder_decoder:
            raise ModelError(
                f"the tokenizer of {settings.model} has no chat template",
                hint="use an instruct (chat) model",
            )
        self.model: Any = model
        self.tokenizer: Any = tokenizer
        self.settings = settings
        self.load_report = report
        self._lock = threading.RLock()
        self._grammars: SchemaGrammars | None = None
        self._last_prefix: _Prefix | None = None

    @classmethod
    def load(cls, settings: TransformersLLM, state_dir: Path) -> HFTextGenerator:
        """Load the configured model (a GGUF is converted once into `state_dir/models`)."""
        model, tokenizer, report = load_model(settings, state_dir)
        return cls(model, tokenizer, settings, report)

    @property
    def device(self) -> torch.device:
        """Where the weights are."""
        return torch.device(self.model.device)

    def info(self) -> ModelInfo:
        """What is loaded and where it runs."""
        report = self.load_report
        details = (
            f"load_in={self.settings.load_in} adapters={len(self.settings.adapters)} "
            f"threads={self.settings.threads} loaded_from={report.source} "
            f"load_s={report.seconds:.2f} folder={report.folder}"
        )
        return ModelInfo(
            name=self.settings.model,
            backend="transformers",
            device=str(self.device),
            dtype=str(self.model.dtype).removeprefix("torch."),
            parameters=int(self.model.num_parameters()),
            details=details,
        )

    def count_tokens(self, text: str) -> int:
        """How many tokens `text` is for this model."""
        return len(_ids(self.tokenizer(text, add_special_tokens=False)["input_ids"]))

    def prompt_text(self, messages: Sequence[ChatMessage]) -> str:
        """`messages` rendered by the model's chat template, ending where the reply starts (a seq2seq
        model without a template: the messages' contents, one paragraph each)."""
        if self.encoder_decoder and not self.tokenizer.chat_template:
            return "\n\n".join(m["content"].strip() for m in messages)
        rendered = self.tokenizer.apply_chat_template(
            [dict(m) for m in messages], add_generation_prompt=True, tokenize=False
        )
        return str(rendered)

    def generate(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        seed: int | None = None,
        stop: Sequence[str] = (),
    ) -> str:
        """The assistant's reply to `messages`, cut before the first `stop` string."""
        new = self._generate(messages, max_new_tokens, temperature, seed, None, stop)[0]
        text = str(self.tokenizer.decode(new, skip_special_tokens=True))
        return cut_at_stop(text, stop)

    def generate_json(
        self,
        messages: Sequence[ChatMessage],
        schema: dict[str, Any],
        *,
        max_new_tokens: int = 512,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> str:
        """Compact JSON valid against `schema`: every token is drawn from what the grammar allows.

        Raises `ModelError` when `max_new_tokens` ends the reply before the JSON is complete.
        """
        return self.sample_json(
            messages, schema, n=1, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed
        )[0]

    def sample_json(
        self,
        messages: Sequence[ChatMessage],
        schema: dict[str, Any],
        *,
        n: int,
        max_new_tokens: int = 512,
        temperature: float = 0.7,
        seed: int | None = None,
    ) -> list[str]:
        """`n` replies to the same prompt, each valid JSON for `schema`, decoded as one batch
        (several times the tokens/s of n separate calls on a CPU)."""
        if n < 1:
            raise ModelError(f"n must be at least 1, got {n}", hint="ask for one or more samples")
        from diffusellm.models.hf.grammar import GrammarProcessor  # xgrammar: only for JSON

        with self._lock:
            grammars = self._schema_grammars()
            processor = GrammarProcessor(grammars.compile(schema), grammars.vocab_size, rows=n)
            rows = self._generate(messages, max_new_tokens, temperature, seed, processor, (), n)
            if not all(processor.finish(i, row) for i, row in enumerate(rows)):
                raise ModelError(
                    f"a JSON reply was not finished within max_new_tokens={max_new_tokens}",
                    hint="raise max_new_tokens or lower the schema's maxLength/maxItems bounds",
                )
        texts = [str(self.tokenizer.decode(row, skip_special_tokens=True)) for row in rows]
        for text in texts:
            json.loads(text)  # cannot fail: the grammar only admits complete JSON
        return texts

    def score(self, messages: Sequence[ChatMessage], continuation: str) -> float:
        """Sum of log P(token) over the tokens of `continuation` as the reply to `messages`.

        The prompt's keys and values are kept from one call to the next, so scoring many
        replies to the same messages (ranking options) runs the prompt through the model once.
        """
        if self.encoder_decoder:
            return self._decoder_score(self.prompt_text(messages), continuation)
        prompt = self.prompt_text(messages)
        tail = _ids(self.tokenizer(continuation, add_special_tokens=False)["input_ids"])
        if not tail:
            return 0.0
        with self._lock, torch.inference_mode():
            prefix = self._prefix(prompt, len(tail))
            if prefix is None:
                return sum_logprobs(self.text_logprobs(prompt + continuation, from_char=len(prompt)))
            total, intact = prefix.score(self.model, tail, self.device)
            if not intact:
                self._last_prefix = None
            return total

    def _prefix(self, prompt: str, new_tokens: int) -> _Prefix | None:
        """The prompt's cached keys and values (computed when the prompt changed); None when the
        model's cache cannot be cut back to the prompt after each reply."""
        ids = _ids(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        self._check_context(len(ids), new_tokens)
        if self._last_prefix is not None and self._last_prefix.ids == ids:
            return self._last_prefix
        self._last_prefix = None
        if not ids:
            return None
        out: Any = self.model(input_ids=torch.tensor([ids], device=self.device), use_cache=True,
                              logits_to_keep=1)
        cache = out["cache"] if "cache" in out else out.get("past_key_values")  # by version
        if not (hasattr(cache, "crop") and hasattr(cache, "get_seq_length")):
            return None
        self._last_prefix = _Prefix(ids, cache, torch.log_softmax(out.logits[0, -1].float(), dim=-1),
                                    _cache_argument(self.model))
        return self._last_prefix

    def _decoder_score(self, prompt: str, continuation: str) -> float:
        """log P(continuation | prompt) of a seq2seq model: the encoder reads the prompt, the decoder
        is scored on the continuation's tokens (teacher forcing, one forward pass)."""
        source = _ids(self.tokenizer(prompt, add_special_tokens=True)["input_ids"])
        target = _ids(self.tokenizer(continuation, add_special_tokens=False)["input_ids"])
        self._check_context(len(source), len(target))
        if not target:
            return 0.0
        with self._lock, torch.inference_mode():
            labels = torch.tensor([target], device=self.device)
            logits = self.model(input_ids=torch.tensor([source], device=self.device), labels=labels).logits[0]
            logprobs = torch.log_softmax(logits.float(), dim=-1)
        return float(sum(float(logprobs[i, t]) for i, t in enumerate(target)))

    def text_logprobs(self, text: str, *, from_char: int = 0) -> list[TokenLogprob]:
        """Tokens of raw `text` (no template) with their log-probabilities, from the token that
        covers character `from_char` on; one forward pass (causal models only)."""
        if self.encoder_decoder:
            raise ModelError(
                f"{self.settings.model} is an encoder-decoder model: raw text has no single likelihood",
                hint="serve a causal model for /v1/completions scoring; score() works for both",
            )
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = _ids(enc["input_ids"])
        offsets = [(int(a), int(b)) for a, b in enc["offset_mapping"]]
        self._check_context(len(ids), 0)
        first = next((i for i, (_, end) in enumerate(offsets) if end > from_char), len(ids))
        if first == len(ids):
            return []
        keep = len(ids) - max(first - 1, 0)
        with self._lock, torch.inference_mode():
            batch = torch.tensor([ids], device=self.device)
            logits = self.model(input_ids=batch, logits_to_keep=keep).logits[0].float()
            logprobs = torch.log_softmax(logits, dim=-1)
        result: list[TokenLogprob] = []
        for i in range(first, len(ids)):
            row = i - 1 - (len(ids) - keep)
            value = float(logprobs[row, ids[i]]) if i > 0 else None
            start, end = offsets[i]
            result.append(TokenLogprob(str(self.tokenizer.decode([ids[i]])), start, end, value))
        return result

    def _schema_grammars(self) -> SchemaGrammars:
        if self._grammars is None:
            from diffusellm.models.hf.grammar import SchemaGrammars

            vocab = int(self.model.config.vocab_size)
            self._grammars = SchemaGrammars(self.tokenizer, vocab, self._stop_ids())
        return self._grammars

    def _stop_ids(self) -> list[int]:
        found: Any = self.model.generation_config.eos_token_id
        ids = [found] if isinstance(found, int) else _ids(found or [])
        if self.tokenizer.eos_token_id is not None:
            ids.append(int(self.tokenizer.eos_token_id))
        if not ids:
            raise ModelError(
                f"{self.settings.model} names no end-of-sequence token",
                hint="set eos_token_id in the model folder's generation_config.json",
            )
        return sorted(set(ids))

    def _check_context(self, prompt_tokens: int, new_tokens: int) -> None:
        limit = self.settings.max_context_tokens
        if prompt_tokens + new_tokens > limit:
            raise ModelError(
                f"{prompt_tokens} prompt tokens + {new_tokens} new tokens exceed "
                f"max_context_tokens={limit}",
                hint="shorten the prompt, ask for fewer tokens, or raise max_context_tokens",
            )

    def _generate(
        self,
        messages: Sequence[ChatMessage],
        max_new_tokens: int,
        temperature: float,
        seed: int | None,
        processor: LogitsProcessor | None,
        stop: Sequence[str],
        rows: int = 1,
    ) -> list[list[int]]:
        """The new token ids of each row of one `generate` call (`rows` copies of the prompt)."""
        self._last_prefix = None  # a kept scoring prompt's keys and values: memory generation needs
        prompt = _ids(
            self.tokenizer(self.prompt_text(messages), add_special_tokens=self.encoder_decoder)["input_ids"]
        )
        self._check_context(len(prompt), max_new_tokens)
        config = self._generation_config(max_new_tokens, temperature, stop)
        extra: dict[str, Any] = {"tokenizer": self.tokenizer} if stop else {}
        devices = [self.device] if self.device.type == "cuda" else []
        rng: Any = torch.random
        with self._lock, torch.inference_mode(), rng.fork_rng(devices=devices):
            if seed is not None:
                rng.manual_seed(seed)
            batch = torch.tensor([prompt] * rows, device=self.device)
            out: Any = self.model.generate(
                input_ids=batch,
                attention_mask=torch.ones_like(batch),
                generation_config=config,
                logits_processor=LogitsProcessorList([processor] if processor else []),
                **extra,
            )
        # A causal model returns prompt + reply; a seq2seq one the decoder's start token + reply.
        return [_ids(row) for row in out[:, 1 if self.encoder_decoder else len(prompt) :]]

    def _generation_config(
        self, max_new_tokens: int, temperature: float, stop: Sequence[str]
    ) -> GenerationConfig:
        stop_ids = self._stop_ids()
        sampling: dict[str, Any] = (
            {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0}
            if temperature > 0
            else {"do_sample": False}
        )
        pad: Any = self.tokenizer.pad_token_id
        return GenerationConfig(
            max_new_tokens=max_new_tokens,
            eos_token_id=stop_ids,
            pad_token_id=stop_ids[0] if pad is None else int(pad),
            stop_strings=[s for s in stop if s] or None,
            **sampling,
        )


@dataclass
class _Prefix:
    """A prompt run through the model once: its token ids, its keys and values, and the
    log-probabilities of the token after it."""

    ids: list[int]
    cache: Any
    next_logprobs: torch.Tensor
    cache_argument: str
    """The name the model's forward takes the cache by (looked up once, not per reply)."""

    def score(self, model: Any, tail: list[int], device: torch.device) -> tuple[float, bool]:
        """log P(tail | prompt), and whether the cache could be cut back to the prompt after it
        (a negative `crop` removes that many tokens, in every transformers version)."""
        total = float(self.next_logprobs[tail[0]])
        if len(tail) == 1:
            return total, True
        try:
            out: Any = model(input_ids=torch.tensor([tail[:-1]], device=device), use_cache=True,
                             **{self.cache_argument: self.cache})
        finally:
            intact = self._cut_back(len(tail) - 1)
        logprobs = torch.log_softmax(out.logits[0].float(), dim=-1)
        return total + float(sum(float(logprobs[i, t]) for i, t in enumerate(tail[1:]))), intact

    def _cut_back(self, added: int) -> bool:
        try:
            self.cache.crop(-added)
        except (RuntimeError, ValueError):  # e.g. a sliding window already past its size
            return False
        return int(self.cache.get_seq_length()) == len(self.ids)


def _cache_argument(model: Any) -> str:
    """The name the model's forward takes a cache by: `cache` in recent transformers (which
    warn about the old name), `past_key_values` before."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def _ids(values: Any) -> list[int]:
    """A token id sequence (list, tuple or tensor row) as plain ints."""
    items: Any = values.tolist() if hasattr(values, "tolist") else values
    return [int(v) for v in items]


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """`text` up to (not including) the earliest of the `stop` strings."""
    cuts = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return text[: min(cuts)] if cuts else text
