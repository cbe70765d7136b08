"""Phase 4 prompts: the messages that ask a model for a plan of operations."""

from __future__ import annotations

from diffusellm.models.base import ChatMessage
from diffusellm.pipeline.locate.context import Localised
from diffusellm.pipeline.normalise.prompts import candidate_lines, guidance_block, style_summary
from diffusellm.pipeline.spec import AddParameter, GenerativeOperation, Operation, RemoveParameter, RenameSymbol, Spec
from diffusellm.pipeline.understand.style.profile import StyleProfile

PLAN_SYSTEM = (
    "You plan a change to a Python repository as a short sequence of operations, as JSON. "
    "Prefer the fewest operations that do what the request asks. Reuse existing functions "
    "instead of adding near copies. Explain the plan in one or two sentences in `rationale`."
)


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
        f"{guidance_block(profile, sorted({s.path for s in loc.symbols[:10]}))}"
    )
    return [{"role": "system", "content": PLAN_SYSTEM}, {"role": "user", "content": user}]
