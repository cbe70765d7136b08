"""Phases 3–5 prompts: every message the worker sends a language model, built from data, in one place.

Prompts are short on purpose: the embedded models are small, and the JSON schema (not the prompt)
is what keeps answers to real targets and the repository's naming conventions.
"""

from __future__ import annotations

from collections.abc import Sequence

from diffusellm.models.base import ChatMessage
from diffusellm.repo.profile import StyleProfile
from diffusellm.worker.plan_context import Localised
from diffusellm.worker.spec import (
    AddParameter,
    GenerativeOperation,
    Operation,
    RemoveParameter,
    RenameSymbol,
    Spec,
)

ISSUE_CHARS = 6000
LISTED_CANDIDATES = 40
FILL_MARK = "<FILL>"

NORMALISE_SYSTEM = (
    "You turn a GitHub issue into a change request for a Python repository, as JSON. "
    "Use only targets from the candidate list. Operations: rename_function, rename_method, "
    "rename_class, add_parameter, remove_parameter, move_symbol, edit_function (change what a "
    "function does), add_function, add_test. Set confidence between 0 and 1. When the issue does "
    "not say what to change or where, give confidence below 0.5, no operations, and one concrete "
    "question for the author in `question`."
)
CHOICE_SYSTEM = (
    "You read GitHub issues about a Python repository and answer questions about them in one short sentence."
)
PLAN_SYSTEM = (
    "You plan a change to a Python repository as a short sequence of operations, as JSON. "
    "Prefer the fewest operations that do what the request asks. Reuse existing functions "
    "instead of adding near copies. Explain the plan in one or two sentences in `rationale`."
)
SCAFFOLD_SYSTEM = (
    "You write the first lines of a Python function: the `def` line and a one-line docstring, "
    "nothing else. Follow the repository's style."
)
FILL_SYSTEM = (
    f"You complete Python code. Reply with only the code that replaces {FILL_MARK}, "
    "indented as it must appear, without explanations and without repeating the code around it."
)


def style_summary(profile: StyleProfile) -> str:
    """The profile in one line of prose for prompts."""
    naming = ", ".join(f"{kind} {conv}" for kind, conv in sorted(profile.naming.items()))
    return (
        f"indent {profile.indent}, {profile.quote_style} quotes, lines up to {profile.line_length}, "
        f"{profile.docstring_style} docstrings; naming: {naming or 'PEP 8'}"
    )


def candidate_lines(loc: Localised, limit: int = LISTED_CANDIDATES) -> str:
    """The best candidates, one per line: kind, qualname and signature."""
    return "\n".join(f"- {s.kind} {s.qualname}{s.signature}" for s in loc.symbols[:limit])


def normalise_messages(issue: str, loc: Localised, profile: StyleProfile) -> list[ChatMessage]:
    """Ask for a draft spec of an issue, grounded in the candidate symbols."""
    user = (
        f"Issue:\n{issue.strip()[:ISSUE_CHARS]}\n\n"
        f"Candidate targets (most likely first):\n{candidate_lines(loc)}\n\n"
        f"Repository style: {style_summary(profile)}"
    )
    return [{"role": "system", "content": NORMALISE_SYSTEM}, {"role": "user", "content": user}]


def choice_messages(question: str, issue: str) -> list[ChatMessage]:
    """Ask one question about an issue (an empty issue gives the baseline a choice is measured against)."""
    user = f"Issue:\n{issue.strip()[:ISSUE_CHARS] or '(empty)'}\n\n{question}"
    return [{"role": "system", "content": CHOICE_SYSTEM}, {"role": "user", "content": user}]


def _detail(op: Operation) -> str:
    if isinstance(op, GenerativeOperation):
        return f": {op.instruction}" if op.instruction else ""
    if isinstance(op, RenameSymbol):
        return f" → {op.new_name}"
    if isinstance(op, AddParameter | RemoveParameter):
        return f" parameter {op.name}"
    return f" → {op.to_module}"


def describe_spec(spec: Spec) -> str:
    """A spec as the planner sees it: title, description and the operations in outline."""
    ops = "\n".join(f"- {op.op} {op.target}{_detail(op)}" for op in spec.operations)
    return f"Title: {spec.title}\n{spec.description.strip()}\nOutline:\n{ops}"


def plan_messages(spec: Spec, loc: Localised, profile: StyleProfile) -> list[ChatMessage]:
    """Ask for one candidate operation sequence, grounded in the localised source."""
    user = (
        f"Request:\n{describe_spec(spec)}\n\n"
        f"Relevant code:\n{loc.context or '(none found)'}\n\n"
        f"Candidate targets:\n{candidate_lines(loc)}\n\n"
        f"Repository style: {style_summary(profile)}"
    )
    return [{"role": "system", "content": PLAN_SYSTEM}, {"role": "user", "content": user}]


def scaffold_messages(qualname: str, instruction: str, context: str, profile: StyleProfile) -> list[ChatMessage]:
    """Ask for the signature and docstring of a new function (the body is filled afterwards)."""
    name = qualname.rsplit(".", 1)[-1]
    user = (
        f"Write the `def {name}(...)` line and docstring of {qualname}.\n"
        f"It should: {instruction}\n"
        f"Style: {style_summary(profile)}\n\nCode nearby:\n{context}"
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
