"""Phase 8, LoRA training data: chat examples rendered by the model's template into token ids and labels.

Only the reply (and the end-of-turn token that closes it) carries loss; the prompt is labelled -100.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from diffusellm.errors import InputError
from diffusellm.learn.dataset import ChatExample
from diffusellm.models.base import ChatMessage

IGNORE_INDEX = -100
"""The label torch's cross-entropy skips: tokens that teach nothing."""


@dataclass(frozen=True)
class Encoded:
    """One training sequence: token ids and, position by position, the id to learn or IGNORE_INDEX."""

    input_ids: list[int]
    labels: list[int]


def reply_with_end(tokenizer: Any, messages: Sequence[ChatMessage], reply: str) -> tuple[str, str]:
    """The prompt as the template renders it up to the reply, and the reply closed as the template closes
    an assistant turn (ChatML: `reply<|im_end|>`), so the model learns to stop after it."""
    turns = [dict(m) for m in messages]
    prompt = str(tokenizer.apply_chat_template(turns, add_generation_prompt=True, tokenize=False))
    whole = str(tokenizer.apply_chat_template([*turns, {"role": "assistant", "content": reply}], tokenize=False))
    eos = str(tokenizer.eos_token or "")
    if not whole.startswith(prompt + reply):
        return prompt, reply + eos  # a template that rewrites the turn: close it with the bare eos token
    tail = whole[len(prompt) + len(reply) :]
    # Keep the end-of-turn marker, drop what follows it (a newline): generation stops before that.
    end = tail[: tail.index(eos) + len(eos)] if eos and eos in tail else tail.rstrip()
    return prompt, reply + (end or eos)


def token_ids(tokenizer: Any, text: str) -> list[int]:
    """Ids of `text`, which already holds every special token the template wants."""
    values: Any = tokenizer(text, add_special_tokens=False)["input_ids"]
    return [int(v) for v in values]


def example_tokens(tokenizer: Any, example: ChatExample, index: int = 0) -> tuple[list[int], list[int]]:
    """Prompt ids and reply ids (end-of-turn included) of one example; `index` names it in errors."""
    if not token_ids(tokenizer, example.reply) or not example.reply.strip():
        raise InputError(
            f"training example {index} has an empty reply",
            hint="every example needs the assistant reply to learn; drop the examples without one",
        )
    prompt, reply = reply_with_end(tokenizer, example.messages, example.reply)
    return token_ids(tokenizer, prompt), token_ids(tokenizer, reply)


def label_tokens(prompt: Sequence[int], reply: Sequence[int], max_tokens: int) -> Encoded:
    """`prompt + reply` with loss on the reply only, at most `max_tokens` long.

    A long example loses the start of its prompt first; a reply that would leave the prompt under a
    quarter of `max_tokens` keeps that quarter of the prompt and loses its own end instead.
    """
    floor = min(len(prompt), max_tokens // 4)
    keep_prompt = max(min(len(prompt), max_tokens - len(reply)), floor)
    kept_prompt = list(prompt[len(prompt) - keep_prompt :])
    kept_reply = list(reply[: max_tokens - keep_prompt])
    return Encoded(kept_prompt + kept_reply, [IGNORE_INDEX] * len(kept_prompt) + kept_reply)


def encode_examples(tokenizer: Any, examples: Sequence[ChatExample], max_tokens: int) -> list[Encoded]:
    """Every example as a labelled token sequence, in order."""
    encoded: list[Encoded] = []
    for index, example in enumerate(examples):
        prompt, reply = example_tokens(tokenizer, example, index)
        encoded.append(label_tokens(prompt, reply, max_tokens))
    return encoded
