"""Phase 3 spec normalisation: a free-text issue (Markdown) becomes a validated `Spec`, or a question.

A fenced ```yaml block wins and no model is asked; a plainly stated refactor whose names resolve is
read by rules. Otherwise, by default ("rank"), every change kind on the likeliest targets is scored
(`normalise_rank`) and the best option's parameters are filled from the issue (`normalise_fill`);
with "draft" the model writes the whole spec as JSON constrained to a schema whose targets are the
repository's real qualnames and whose new names follow the profiled conventions. When the issue
names no code and the ranking is unsure, or a needed value is missing, the author is asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import structlog
import yaml
from pydantic import ValidationError

from diffusellm.errors import SpecError
from diffusellm.models.base import ModelError, TextGenerator
from diffusellm.pipeline.locate.context import Localised
from diffusellm.pipeline.normalise.cues import read_issue
from diffusellm.pipeline.normalise.draft import (
    DraftSpec,
    draft_spec_model,
    json_schema,
    parse_draft,
    to_operations,
)
from diffusellm.pipeline.normalise.fill import Filler, Unfilled, fill_operation
from diffusellm.pipeline.normalise.prompts import normalise_messages
from diffusellm.pipeline.normalise.rank import MODEL_WEIGHT, Ranking, rank_options
from diffusellm.pipeline.normalise.rules import issue_spec, rule_spec
from diffusellm.pipeline.normalise.typos import typo_candidates
from diffusellm.pipeline.settings import MIN_CONFIDENCE
from diffusellm.pipeline.spec import YAML_FENCE, RenameSymbol, Spec, load_spec_text, parse_spec
from diffusellm.pipeline.understand.style.profile import StyleProfile

DRAFT_TOKENS = 320
FILL_TRIES = 3
"""Options tried, best first, when the best cannot apply (say, no parameter to remove)."""
log = structlog.get_logger(__name__)
NormaliseMethod = Literal["rank", "draft"]


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
    if yaml_only or YAML_FENCE.search(text.replace("\r\n", "\n")):
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


def issue_text(title: str, body: str) -> str:
    """An issue as the normaliser reads it: its title (often the request itself) as a heading, then its body."""
    return f"# {title}\n\n{body}"


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
    method: NormaliseMethod = "rank",
    model_weight: float = MODEL_WEIGHT,
) -> Spec | NeedsClarification:
    """Turn an issue into a `Spec`: its YAML block if it has one, a plain refactor by rules, else
    the best ranked option (or, with `method="draft"`, the model's whole draft)."""
    spec = spec_from_text(text, source=source)
    if spec is not None:
        return spec
    ruled = rule_spec(text, loc, _title(text, "Change requested in an issue"))
    if ruled is not None:  # a plainly stated refactor whose names all resolve: no model needed
        return ruled
    typo = _typo(text, loc)
    if typo is not None:
        return typo
    if method == "rank":
        limits = _RankLimits(min_confidence, model_weight, seed)
        return _ranked(text, llm=llm, loc=loc, profile=profile, limits=limits)
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


def _typo(text: str, loc: Localised) -> Spec | NeedsClarification | None:
    """A reported misspelling: the one rename that fixes it, or which of a few the author means."""
    found = typo_candidates(read_issue(text), loc)
    if not found:
        return None
    first = found[0]
    if len(found) == 1 or first.rank[:2] < found[1].rank[:2]:  # how well attested is no tie-break
        rename = RenameSymbol(op="rename_symbol", target=first.symbol.qualname, new_name=first.new_name)
        return issue_spec(text, _title(text, "Fix a misspelt name"), [rename])
    options = "; or ".join(f"`{m.symbol.qualname}` to `{m.new_name}`" for m in found[:3])
    return NeedsClarification(
        f"Which misspelt name should be fixed: rename {options}? Naming it is enough.",
        "the issue reports a misspelling and several names look misspelt",
    )


@dataclass(frozen=True)
class _RankLimits:
    min_confidence: float
    model_weight: float
    seed: int


def _ranked(
    text: str, *, llm: TextGenerator, loc: Localised, profile: StyleProfile, limits: _RankLimits
) -> Spec | NeedsClarification:
    words = read_issue(text)
    naming = profile.naming.get("parameter", "snake_case")
    ranking = rank_options(words, loc, llm, parameter_naming=naming, model_weight=limits.model_weight)
    if not ranking.options:
        return NeedsClarification(default_question(loc), "the repository has no candidate to change")
    if not ranking.grounded and ranking.confidence < limits.min_confidence:
        reason = (
            f"the issue names none of the code and the best reading has confidence {ranking.confidence:.2f}"
            f" (below {limits.min_confidence:.2f})"
        )
        return NeedsClarification(ranked_question(ranking), reason, _ranking_report(ranking))
    filler = Filler(words, loc, profile, llm, limits.seed)
    for option in ranking.options[:FILL_TRIES]:
        try:
            filled = fill_operation(option, filler)
        except ValidationError as exc:  # a value read from the issue that the spec refuses
            log.info("normalise.unusable_value", option=option.op, problem=str(exc).splitlines()[0])
            continue
        if isinstance(filled, Unfilled) and option.cued:  # asked for plainly, but a value is missing
            return NeedsClarification(filled.question, "the issue does not say it", _ranking_report(ranking))
        if filled is not None and not isinstance(filled, Unfilled):
            return issue_spec(text, _title(text, "Change requested in an issue"), [filled])
    return NeedsClarification(ranked_question(ranking), "no likely reading of the issue applies to the code")


def ranked_question(ranking: Ranking) -> str:
    """Ask which of the three best readings the author means."""
    readings = [f"{o.op.replace('_', ' ')} `{o.target.qualname}`" for o in ranking.options[:3]]
    return (
        "I could not tell which change this issue asks for. Do you mean: " + "; or ".join(readings) + "? "
        "Naming the function or class, and what should happen to it, is enough "
        "(or write a ```yaml spec block; see docs/SPEC.md)."
    )


def _ranking_report(ranking: Ranking) -> dict[str, Any]:
    return {
        "confidence": round(ranking.confidence, 3),
        "grounded": ranking.grounded,
        "options": [
            {"op": o.op, "target": o.target.qualname, "score": round(o.score, 2), "reasons": list(o.reasons)}
            for o in ranking.options[:5]
        ],
    }


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
    return issue_spec(issue, draft.title.strip() or _title(issue, "Change requested in an issue"), operations)
