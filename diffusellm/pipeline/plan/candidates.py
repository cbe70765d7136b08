"""Phase 4 generative planning: candidate operation sequences from the model, ranked by the scorer.

The planner asks the language model for K candidate sequences (JSON constrained to the repository's
real targets), grounded in the localised source and the style profile. The spec decides: a candidate
that does not carry out every operation of the spec, or adds one the issue did not ask for, is dropped
(`fidelity`), and a spec whose operations need no code, from an issue that asks for nothing more, is
its own plan with no model call. A scorer model ranks the rest by the conditional log-likelihood of each
sequence, combined with cheap features: files touched, graph impact (callers of what changes) and
naming conformance. A plan that leaves out something the issue asks for, or whose scoring failed,
ranks below every other. The best plan is tried first.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Literal

import structlog
from pydantic import BaseModel, ConfigDict

from diffusellm.errors import SpecError
from diffusellm.models.base import ChatMessage, ModelError, TextGenerator
from diffusellm.pipeline.locate.context import Localised, approx_tokens
from diffusellm.pipeline.normalise.draft import draft_plan_model, json_schema, parse_draft, to_operations
from diffusellm.pipeline.plan.features import GraphView, measure
from diffusellm.pipeline.plan.fidelity import asked_extras, missing_extras, unmet
from diffusellm.pipeline.plan.prompts import plan_messages
from diffusellm.pipeline.settings import PlanOptions
from diffusellm.pipeline.spec import GENERATIVE_KINDS, EditFunction, Operation, Spec
from diffusellm.pipeline.understand.style.profile import StyleProfile

PLAN_TOKENS = 320
log = structlog.get_logger(__name__)


class PlanFeatures(BaseModel):
    """What the ranking weighed."""

    model_config = ConfigDict(extra="forbid")

    log_likelihood: float = 0.0
    """Mean log-probability per token of the sequence under the scorer."""
    scoring_failed: bool = False
    """The scorer was asked and failed: the plan ranks below every scored one."""
    missing_asked: int = 0
    """Additive kinds the issue asks for (a test, a function) that the plan leaves out."""
    files_touched: int = 0
    graph_impact: int = 0
    """Callers of the functions and classes the plan changes."""
    naming_conformance: float = 1.0
    """Share of the plan's new names that follow the repository's convention."""


class Plan(BaseModel):
    """One candidate sequence of operations, ranked."""

    model_config = ConfigDict(extra="forbid")

    operations: list[Operation]
    score: float = 0.0
    features: PlanFeatures = PlanFeatures()
    rationale: str = ""
    origin: Literal["spec", "model"] = "spec"
    requires_approval: bool = False
    approval_reasons: list[str] = []


def operations_json(operations: Sequence[Operation]) -> str:
    """Canonical JSON of a sequence: what the scorer scores and what duplicates compare by."""
    return json.dumps([op.model_dump(mode="json", exclude_none=True) for op in operations], sort_keys=True)


def plan_from_spec(spec: Spec) -> Plan:
    """The one plan a written spec stands for: its operations, as given."""
    return Plan(operations=list(spec.operations), rationale="the operations the spec lists", origin="spec")


def propose(
    spec: Spec, *, llm: TextGenerator, loc: Localised, profile: StyleProfile, options: PlanOptions
) -> tuple[list[Plan], list[str]]:
    """The spec's own sequence plus up to K model candidates (distinct, each carrying out the spec);
    and why others were dropped. No model call when the spec's operations need no code and the issue
    asks for nothing more."""
    plans = [plan_from_spec(spec)]
    seen = {operations_json(spec.operations)}
    dropped: list[str] = []
    extras = asked_extras(spec)
    if not extras and not any(op.op in GENERATIVE_KINDS for op in spec.operations):
        return plans, dropped
    model = draft_plan_model(loc, profile)
    messages, schema = plan_messages(spec, loc, profile), json_schema(model)
    for i in range(options.candidates):
        temperature = 0.0 if i == 0 else options.temperature
        try:
            reply = llm.generate_json(
                messages, schema, max_new_tokens=PLAN_TOKENS, temperature=temperature, seed=options.seed + i
            )
            draft = parse_draft(model, reply)
            ops = to_operations(draft, loc)
        except (SpecError, ModelError) as exc:
            dropped.append(f"candidate {i + 1}: {exc.message}")
            continue
        problems = unmet(spec, ops, extras)
        if problems:
            dropped.append(f"candidate {i + 1} does not carry out the spec: " + "; ".join(problems))
            continue
        key = operations_json(ops)
        if key in seen:
            continue
        seen.add(key)
        plans.append(Plan(operations=ops, rationale=draft.rationale, origin="model"))
    return plans, dropped


def rank(
    plans: Sequence[Plan],
    *,
    scorer: TextGenerator | None,
    messages: Sequence[ChatMessage],
    graph: GraphView,
    loc: Localised,
    profile: StyleProfile,
    options: PlanOptions,
    spec: Spec | None = None,
) -> list[Plan]:
    """Plans with their features and scores, best first (stable for ties): plans that leave out what
    the issue asks for, then plans whose scoring failed, rank last whatever their score."""
    ranked: list[Plan] = []
    extras = asked_extras(spec) if spec is not None else frozenset[str]()
    for plan in plans:
        files, impact, naming = measure(plan.operations, graph, loc, profile)
        text = operations_json(plan.operations)
        ll = _log_likelihood(scorer, messages, text)
        features = PlanFeatures(
            log_likelihood=round(ll or 0.0, 4),
            scoring_failed=ll is None,
            missing_asked=missing_extras(plan.operations, extras),
            files_touched=files,
            graph_impact=impact,
            naming_conformance=naming,
        )
        score = _combine(features, options)
        reasons = _approval_reasons(plan.operations, features, options)
        ranked.append(
            plan.model_copy(
                update={
                    "features": features,
                    "score": round(score, 4),
                    "requires_approval": bool(reasons),
                    "approval_reasons": reasons,
                }
            )
        )
    return sorted(ranked, key=lambda p: (p.features.missing_asked, p.features.scoring_failed, -p.score))


def _log_likelihood(scorer: TextGenerator | None, messages: Sequence[ChatMessage], text: str) -> float | None:
    """Mean log-probability per token of `text`: 0.0 without a scorer, None when scoring fails."""
    if scorer is None:
        return 0.0
    try:
        return scorer.score(messages, text) / max(1, approx_tokens(text))
    except ModelError as exc:
        log.warning("plan.score_failed", problem=exc.message)
        return None


def _combine(f: PlanFeatures, options: PlanOptions) -> float:
    return (
        f.log_likelihood
        - options.files_weight * f.files_touched
        - options.impact_weight * math.log1p(f.graph_impact)
        - options.naming_weight * (1.0 - f.naming_conformance)
    )


def _approval_reasons(ops: Sequence[Operation], f: PlanFeatures, options: PlanOptions) -> list[str]:
    reasons: list[str] = []
    if f.files_touched > options.approval_files:
        reasons.append(f"touches {f.files_touched} files (more than {options.approval_files})")
    if f.graph_impact > options.approval_callers:
        reasons.append(f"changes code with {f.graph_impact} callers (more than {options.approval_callers})")
    if any(isinstance(op, EditFunction) and op.signature_may_change for op in ops):
        reasons.append("changes a signature without updating its callers")
    return reasons


def plan_change(
    spec: Spec,
    *,
    llm: TextGenerator,
    scorer: TextGenerator | None,
    graph: GraphView,
    loc: Localised,
    profile: StyleProfile,
    options: PlanOptions | None = None,
) -> tuple[list[Plan], list[str]]:
    """Propose and rank: plans best first, and the reasons some candidates were dropped."""
    options = options or PlanOptions()
    plans, dropped = propose(spec, llm=llm, loc=loc, profile=profile, options=options)
    messages = plan_messages(spec, loc, profile)
    scorer = scorer if len(plans) > 1 else None  # one plan: nothing to rank, no model call
    ranked = rank(
        plans, scorer=scorer, messages=messages, graph=graph, loc=loc, profile=profile, options=options, spec=spec
    )
    log.info("plan.ranked", plans=len(ranked), dropped=len(dropped), best=ranked[0].score if ranked else None)
    return ranked, dropped
