"""Structured output, transformers side: JSON schema → xgrammar grammar → logits processor.

The processor masks every token the grammar forbids, so the reply is valid JSON for the schema by
construction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import torch
import xgrammar as xgr
from transformers import LogitsProcessor, PreTrainedTokenizerBase

from diffusellm.errors import InputError
from diffusellm.models.base import ModelError


class SchemaGrammars:
    """Compiles JSON schemas for one tokenizer; xgrammar caches compiled grammars by schema text."""

    def __init__(
        self, tokenizer: PreTrainedTokenizerBase, vocab_size: int, stop_ids: Sequence[int]
    ):
        self.vocab_size = vocab_size
        info = xgr.TokenizerInfo.from_huggingface(
            tokenizer, vocab_size=vocab_size, stop_token_ids=list(stop_ids)
        )
        self._compiler = xgr.GrammarCompiler(info, max_threads=1)

    def compile(self, schema: dict[str, Any]) -> xgr.CompiledGrammar:
        """The grammar of compact JSON (single spaces after `:` and `,`) valid against `schema`."""
        text = json.dumps(schema, sort_keys=False)
        try:
            return self._compiler.compile_json_schema(text, any_whitespace=False, strict_mode=True)
        except (RuntimeError, ValueError) as exc:
            raise InputError(
                f"the JSON schema cannot be turned into a grammar: {exc}",
                hint="build schemas with diffusellm.pipeline.normalise.schema.schema_for",
            ) from exc


class GrammarProcessor(LogitsProcessor):
    """Masks each row's logits to the tokens its grammar allows next; use once per generate call.

    Row i of the batch gets its own matcher over the same grammar (n samples of one prompt).
    """

    def __init__(self, grammar: xgr.CompiledGrammar, vocab_size: int, rows: int = 1) -> None:
        self._matchers = [xgr.GrammarMatcher(grammar) for _ in range(rows)]
        self._bitmask = xgr.allocate_token_bitmask(rows, vocab_size)
        self._vocab_size = vocab_size
        self._prompt_len: int | None = None
        self._fed = [0] * rows

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        if input_ids.shape[0] != len(self._matchers):
            raise ModelError(
                f"grammar set up for {len(self._matchers)} rows, got {input_ids.shape[0]}",
                hint="a bug: report it with the schema and prompt",
            )
        if self._prompt_len is None:
            self._prompt_len = int(input_ids.shape[1])
        for row, matcher in enumerate(self._matchers):
            if self._prompt_len + self._fed[row] < input_ids.shape[1]:
                tail: Any = input_ids[row, self._prompt_len + self._fed[row] :]
                self._feed(row, [int(t) for t in tail.tolist()])
            if matcher.is_terminated():
                self._bitmask[row].fill_(-1)  # finished rows only get padding; allow anything
            else:
                matcher.fill_next_token_bitmask(self._bitmask, row)
        on_cpu = scores.device.type == "cpu"
        xgr.apply_token_bitmask_inplace(
            scores,
            self._bitmask.to(scores.device),
            vocab_size=self._vocab_size,
            backend="cpu" if on_cpu else "torch_native",
        )
        return scores

    def _feed(self, row: int, tokens: list[int]) -> None:
        matcher = self._matchers[row]
        for token in tokens:
            if matcher.is_terminated():
                return
            if not matcher.accept_token(token):
                raise ModelError(
                    f"token {token} broke the grammar it was sampled under",
                    hint="a bug: report it with the schema and prompt",
                )
            self._fed[row] += 1

    def finish(self, row: int, generated: Sequence[int]) -> bool:
        """Feed row `row`'s tokens sampled after the last call (its stop token); True when its JSON
        is complete and was ended by a stop token."""
        self._feed(row, list(generated[self._fed[row] :]))
        return self._matchers[row].is_terminated()
