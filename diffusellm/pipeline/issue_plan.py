"""Phases 3–5 for the runner: localise an issue, normalise it, plan it; the settings of generation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from pydantic import BaseModel, ConfigDict

from diffusellm.errors import DiffuseLLMError
from diffusellm.models.base import TextGenerator
from diffusellm.pipeline.locate.context import Localised, localise_by_overlap, localise_from_locate
from diffusellm.pipeline.normalise.issue import NeedsClarification, normalise_issue
from diffusellm.pipeline.plan.candidates import Plan, plan_change, plan_from_spec
from diffusellm.pipeline.plan.fidelity import asked_extras, unmet
from diffusellm.pipeline.settings import GenerationSettings, LocateSettings
from diffusellm.pipeline.spec import Spec
from diffusellm.pipeline.understand.graph import KnowledgeGraph
from diffusellm.pipeline.understand.style.profile import StyleProfile

if TYPE_CHECKING:
    from diffusellm.pipeline.locate.query import LocateResult

log = structlog.get_logger(__name__)
Localiser = Callable[[Path, Path, str, int], Localised]
"""(work copy, knowledge graph, issue text, token budget) → the localised candidates."""
LOCATED_SHOWN = 10
OVERLAP_REASON = "shares identifiers with the issue"


class LocatedFile(BaseModel):
    """A file the issue points at, and why."""

    model_config = ConfigDict(extra="forbid")

    path: str
    score: float | None = None
    reasons: list[str] = []


class LocatedFunction(BaseModel):
    """A function, method or class the issue points at, and why."""

    model_config = ConfigDict(extra="forbid")

    qualname: str
    path: str
    line: int
    score: float | None = None
    reasons: list[str] = []


class Located(BaseModel):
    """What localisation found for an issue, best first: what `diffusellm plan` shows."""

    model_config = ConfigDict(extra="forbid")

    files: list[LocatedFile] = []
    functions: list[LocatedFunction] = []


@dataclass
class Planned:
    """Phases 3–4 for one job: the spec worked from, plans best first, or a question."""

    loc: Localised
    spec: Spec | None = None
    plans: list[Plan] = field(default_factory=lambda: [])
    question: NeedsClarification | None = None
    notes: list[str] = field(default_factory=lambda: [])
    located: Located = field(default_factory=Located)


class LocateLocaliser:
    """Localisation with `diffusellm.pipeline.locate.query` (ranked as `options` say), falling back to
    identifier overlap when the embedding model or index cannot be used; keeps the last ranking, with
    its reasons, for reports."""

    def __init__(self, index_dir: Path, model_dir: Path, options: LocateSettings | None = None) -> None:
        self.index_dir = index_dir
        self.model_dir = model_dir
        self.options = options
        self.last: LocateResult | None = None

    def __call__(self, root: Path, graph_db: Path, text: str, budget: int) -> Localised:
        self.last = None
        try:
            from diffusellm.pipeline.locate.query import locate

            result = locate(root, text, top=50, index_dir=self.index_dir, model_dir=self.model_dir,
                            graph_db=graph_db, options=self.options)
        except (DiffuseLLMError, OSError, ImportError, RuntimeError) as exc:
            log.warning("localise.fallback", reason=str(exc))
            return localise_by_overlap(root, graph_db, text, budget_tokens=budget)
        self.last = result
        return localise_from_locate(root, graph_db, text, result, budget_tokens=budget)


def locate_localiser(index_dir: Path, model_dir: Path, options: LocateSettings | None = None) -> Localiser:
    """Localisation with `diffusellm.pipeline.locate.query` (see `LocateLocaliser`)."""
    return LocateLocaliser(index_dir, model_dir, options)


def located(localiser: Localiser, loc: Localised) -> Located:
    """The files and functions found, with the ranker's reasons, or by overlap when it had none."""
    ranked = localiser.last if isinstance(localiser, LocateLocaliser) else None
    if ranked is not None:
        return Located(
            files=[
                LocatedFile(path=f.path, score=f.score, reasons=list(f.reasons)) for f in ranked.files[:LOCATED_SHOWN]
            ],
            functions=[
                LocatedFunction(
                    qualname=f.qualname, path=f.path, line=f.start_line, score=f.score, reasons=list(f.reasons)
                )
                for f in ranked.functions[:LOCATED_SHOWN]
            ],
        )
    symbols = [s for s in loc.symbols if s.kind in ("function", "method", "class")][:LOCATED_SHOWN]
    paths = list(dict.fromkeys(s.path for s in symbols))
    return Located(
        files=[LocatedFile(path=p, reasons=[OVERLAP_REASON]) for p in paths],
        functions=[
            LocatedFunction(qualname=s.qualname, path=s.path, line=s.start_line, reasons=[OVERLAP_REASON])
            for s in symbols
        ],
    )


def overlap_localiser(root: Path, graph_db: Path, text: str, budget: int) -> Localised:
    """Localisation by identifier overlap with the knowledge graph alone."""
    return localise_by_overlap(root, graph_db, text, budget_tokens=budget)


def plan_issue(
    text: str,
    *,
    root: Path,
    graph_db: Path,
    llm: TextGenerator,
    scorer: TextGenerator | None,
    profile: StyleProfile,
    settings: GenerationSettings,
    localiser: Localiser,
    source: str = "issue",
    normaliser: TextGenerator | None = None,
) -> Planned:
    """Localise, normalise (with `normaliser`, else the LLM), then plan: the ranked plans or a question."""
    loc = localiser(root, graph_db, text, settings.context_tokens)
    found = located(localiser, loc)
    result = normalise_issue(
        text,
        llm=normaliser or llm,
        loc=loc,
        profile=profile,
        source=source,
        min_confidence=settings.min_confidence,
        method=settings.normalise,
        model_weight=settings.normalise_model_weight,
    )
    if isinstance(result, NeedsClarification):
        return Planned(loc=loc, question=result, located=found)
    with KnowledgeGraph(graph_db) as graph:
        plans, dropped = plan_change(
            result, llm=llm, scorer=scorer or llm, graph=graph, loc=loc, profile=profile, options=settings.plan
        )
    faithful, refused = refuse_unfaithful(result, plans)
    return Planned(loc=loc, spec=result, plans=faithful, notes=dropped + refused, located=found)


def refuse_unfaithful(spec: Spec, plans: list[Plan]) -> tuple[list[Plan], list[str]]:
    """The plans that carry out `spec`, and why the others were refused (the spec decides the plan)."""
    extras = asked_extras(spec)
    kept: list[Plan] = []
    refused: list[str] = []
    for number, plan in enumerate(plans, start=1):
        problems = unmet(spec, plan.operations, extras)
        if problems:
            refused.append(f"plan {number} refused: it " + "; it ".join(problems))
        else:
            kept.append(plan)
    return kept or [plan_from_spec(spec)], refused


def plan_written_spec(spec: Spec, *, root: Path, graph_db: Path, settings: GenerationSettings) -> Planned:
    """A YAML spec whose generative operations lack code: its one plan, with nearby source."""
    text = "\n".join([spec.title, spec.description, *(op.target for op in spec.operations)])
    loc = overlap_localiser(root, graph_db, text, settings.context_tokens)
    return Planned(loc=loc, spec=spec, plans=[plan_from_spec(spec)], located=located(overlap_localiser, loc))
