"""Phase 5 prompts: the messages that draft a function's scaffold and fill its holes."""

from __future__ import annotations

from collections.abc import Sequence

from diffusellm.models.base import ChatMessage
from diffusellm.pipeline.normalise.prompts import guidance_block, style_summary
from diffusellm.pipeline.understand.style.profile import StyleProfile

FILL_MARK = "<FILL>"
SCAFFOLD_SYSTEM = (
    "You write the first lines of a Python function: the `def` line and a one-line docstring, "
    "nothing else. Follow the repository's style."
)
FILL_SYSTEM = (
    f"You complete Python code. Reply with only the code that replaces {FILL_MARK}, "
    "indented as it must appear, without explanations and without repeating the code around it."
)


def scaffold_messages(
    qualname: str, instruction: str, context: str, profile: StyleProfile, path: str | None = None
) -> list[ChatMessage]:
    """Ask for the signature and docstring of a new function (the body is filled afterwards); `path`,
    the file it goes in, picks the nearest AGENTS.md."""
    name = qualname.rsplit(".", 1)[-1]
    user = (
        f"Write the `def {name}(...)` line and docstring of {qualname}.\n"
        f"It should: {instruction}\n"
        f"Style: {style_summary(profile)}{guidance_block(profile, [path] if path else [])}\n\n"
        f"Code nearby:\n{context}"
    )
    return [{"role": "system", "content": SCAFFOLD_SYSTEM}, {"role": "user", "content": user}]


def fill_messages(prefix: str, suffix: str, context: str) -> list[ChatMessage]:
    """Ask for the code of one gap in a scaffold."""
    user = (
        f"{context.strip()}\n\n```python\n{prefix}{FILL_MARK}\n{suffix}```"
        if context
        else (f"```python\n{prefix}{FILL_MARK}\n{suffix}```")
    )
    return [{"role": "system", "content": FILL_SYSTEM}, {"role": "user", "content": user}]


def generation_context(instruction: str, nearby: str, errors: Sequence[str] = ()) -> str:
    """What a filler is told besides the scaffold: the task, nearby code, and what failed before."""
    parts = [f"Task: {instruction.strip()}"]
    if nearby.strip():
        parts.append(f"Code nearby:\n{nearby.strip()}")
    if errors:
        listed = "\n".join(f"- {e}" for e in errors[:10])
        parts.append(f"The previous version failed these checks; fix them:\n{listed}")
    return "\n\n".join(parts)
