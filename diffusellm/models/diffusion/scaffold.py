"""Generation, diffusion core: a scaffold to token ids with mask runs for its holes, and filled holes back to text."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from diffusellm.errors import InputError
from diffusellm.models.base import Hole, Scaffold

ANCHOR_TOKENS = 8
"""Tokens before a hole decoded with it, so a tokenizer's leading-space rules apply as they would in place."""


@dataclass(frozen=True)
class ScaffoldTokens:
    """The token ids of a context prefix plus scaffold, and the `[start, end)` span of each hole in them."""

    ids: list[int]
    holes: list[tuple[int, int]]


def tokenise_scaffold(
    scaffold: Scaffold, *, encode: Callable[[str], list[int]], mask_id: int, prefix: Sequence[int] = ()
) -> ScaffoldTokens:
    """`prefix`, then each fixed segment encoded on its own, then `max_tokens` mask ids for each hole."""
    ids = list(prefix)
    holes: list[tuple[int, int]] = []
    for index, segment in enumerate(scaffold):
        if isinstance(segment, Hole):
            if segment.max_tokens < 1:
                raise InputError(
                    f"hole {len(holes) + 1} (scaffold item {index}) allows {segment.max_tokens} tokens",
                    hint="give every Hole a max_tokens of at least 1",
                )
            holes.append((len(ids), len(ids) + segment.max_tokens))
            ids.extend([mask_id] * segment.max_tokens)
        else:
            encoded = encode(segment)
            if mask_id in encoded:
                raise InputError(
                    f"scaffold item {index} contains the model's mask token",
                    hint="fixed text must not contain the mask token; use a Hole for the region to fill",
                )
            ids.extend(encoded)
    return ScaffoldTokens(ids=ids, holes=holes)


def hole_text(
    ids: Sequence[int], span: tuple[int, int], *, stop_ids: Collection[int], decode: Callable[[list[int]], str]
) -> str:
    """The text of one filled hole: its tokens up to the first end-of-text or padding token, decoded in place.

    A hole is a budget, not a length: a model that needs fewer tokens pads the rest with end or padding
    tokens, and whatever follows the first of them is not part of the answer.
    """
    start, end = span
    body = list(ids[start:end])
    for offset, token in enumerate(body):
        if token in stop_ids:
            body = body[:offset]
            break
    if not body:
        return ""
    anchor = list(ids[max(0, start - ANCHOR_TOKENS) : start])
    head = decode(anchor)
    whole = decode(anchor + body)
    return whole[len(head) :] if whole.startswith(head) else decode(body)
