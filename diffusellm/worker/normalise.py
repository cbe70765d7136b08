"""Phase 3 spec normalisation: a free-text issue (Markdown) becomes a validated `Spec`, or a question.

A fenced ```yaml block wins and no model is asked. Otherwise the language model answers with JSON
constrained to a draft-spec schema whose targets are the repository's real qualnames (the localised
candidates) and whose new names follow the profiled naming conventions; when it is not confident it
asks a concrete question instead of guessing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
import yaml

from diffusellm.errors import SpecError
from diffusellm.models.base import ModelError, TextGenerator
from diffusellm.repo.profile import StyleProfile
from diffusellm.worker.normalise_rules import rule_spec
from diffusellm.worker.plan_context import Localised
from diffusellm.worker.plan_draft import (
    DraftSpec,
    draft_spec_model,
    json_schema,
    parse_draft,
    to_operations,
)
from diffusellm.worker.plan_settings import MIN_CONFIDENCE
from diffusellm.worker.prompts import normalise_messages
from diffusellm.worker.spec import Spec, load_spec_text, parse_spec

DRAFT_TOKENS = 320
_YAML_FENCE = re.compile(r"^```ya?ml[ \t]*$", re.MULTILINE)
log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class NeedsClarification:
    """The issue does not say enough to act on: a concrete question for its author."""

    question: str
    reason: str
    draft: dict[str, Any] | None = None
    """The model's answer, when there was one, for the job report."""


def read_issue_file(path: Path) -> str:
    """The text of an issue or spec file, with the errors `load_spec_file` gives."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"issue or spec file not found: {path}", hint="pass a YAML spec or a Markdown issue") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read {path}: {exc}") from None


def spec_from_text(text: str, *, source: str = "issue", yaml_only: bool = False) -> Spec | None:
    """The spec a text spells out in YAML (a fenced block, or the whole text), else None.

    A YAML block or a YAML file with mistakes is an error, never a reason to ask a model.
    """
    if yaml_only or _YAML_FENCE.search(text.replace("\r\n", "\n")):
        return load_spec_text(text, source=source)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    if isinstance(data, dict) and "operations" in data:
        return parse_spec(data, source=source)
    return None


def default_question(loc: Localised) -> str:
    """A concrete question naming the likeliest candidates."""
    names = ", ".join(f"`{s.qualname}`" for s in loc.symbols[:3])
    where = f" Is it one of {names}?" if names else ""
    return (
        "Which function or class should change, and how should it behave afterwards?"
        f"{where} (You can also write the change as a ```yaml spec block; see docs/SPEC.md.)"
    )


def _title(issue: str, fallback: str) -> str:
    first = next((ln.strip("# ").strip() for ln in issue.splitlines() if ln.strip()), "")
    return (first or fallback)[:200]


def normalise_issue(
    text: str,
    *,
    llm: TextGenerator,
    loc: Localised,
    profile: StyleProfile,
    source: str = "issue",
    min_confidence: float = MIN_CONFIDENCE,
    seed: int = 0,
) -> Spec | NeedsClarification:
    """Turn an issue into a `Spec`: its YAML block if it has one, else the model's draft."""
    spec = spec_from_text(text, source=source)
    if spec is not None:
        return spec
    ruled = rule_spec(text, loc, _title(text, "Change requested in an issue"))
    if ruled is not None:  # a plainly stated refactor whose names all resolve: no model needed
        return ruled
    model = draft_spec_model(loc, profile)
    messages = normalise_messages(text, loc, profile)
    try:
        reply = llm.generate_json(messages, json_schema(model), max_new_tokens=DRAFT_TOKENS, seed=seed)
    except ModelError as exc:
        log.warning("normalise.model_failed", problem=exc.message)
        return NeedsClarification(default_question(loc), f"the model could not write a spec: {exc.message}")
    try:
        draft = parse_draft(model, reply)
    except SpecError as exc:
        log.info("normalise.unusable_answer", problem=exc.message)
        return NeedsClarification(default_question(loc), f"the model's answer was unusable: {exc.message}")
    return _decide(draft, text, loc, min_confidence)


def _decide(draft: DraftSpec, issue: str, loc: Localised, min_confidence: float) -> Spec | NeedsClarification:
    answer = draft.model_dump(mode="json")
    question = draft.question.strip() or default_question(loc)
    if draft.confidence < min_confidence or not draft.operations:
        reason = (
            f"the model's confidence {draft.confidence:.2f} is below {min_confidence:.2f}"
            if draft.operations
            else "the model found no operation to perform"
        )
        return NeedsClarification(question, reason, answer)
    try:
        operations = to_operations(draft, loc)
    except SpecError as exc:
        return NeedsClarification(question, exc.message, answer)
    title = draft.title.strip() or _title(issue, "Change requested in an issue")
    return Spec(title=title[:200], description=issue.strip()[:20_000], operations=operations)
