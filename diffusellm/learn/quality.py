"""Phase 8, training-set checks: warnings for sets an adapter learns little or the wrong thing from."""

from __future__ import annotations

from collections.abc import Sequence

from diffusellm.learn.dataset import ChatExample

MIN_EXAMPLES = 20
"""Below this many examples an adapter mostly memorises them."""
_STUB_LINES = frozenset({"pass", "...", "return", "return None"})


def trivial_body(reply: str) -> bool:
    """Whether a function body teaches nothing: only `pass`, `...`, `return None`, comments or a
    `raise NotImplementedError`."""
    lines = [s for s in (line.strip() for line in reply.splitlines()) if s and not s.startswith("#")]
    return all(s in _STUB_LINES or s.startswith("raise NotImplementedError") for s in lines)


def training_warnings(examples: Sequence[ChatExample], min_examples: int = MIN_EXAMPLES) -> list[str]:
    """What is wrong with a training set, in words a person can act on; [] when nothing is."""
    count = len(examples)
    if not count:
        return []
    found: list[str] = []
    if count < min_examples:
        found.append(f"only {count} training example(s): below {min_examples} an adapter mostly memorises "
                     "them; accept more runs before training")
    trivial = sum(trivial_body(e.reply) for e in examples)
    if trivial:
        found.append(f"{trivial} of {count} example replies are trivial bodies (pass, ..., return None): "
                     "the adapter learns to write stubs; drop them or accept runs with real code")
    distinct = len({e.reply.strip() for e in examples})
    if count >= 4 and distinct * 2 <= count:
        found.append(f"only {distinct} distinct replies among {count} examples: the adapter learns to repeat them")
    return found
