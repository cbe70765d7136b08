"""Phases 3–5 for the runner: localise an issue, normalise it, plan it; the settings of generation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from diffusellm.errors import DiffuseLLMError
from diffusellm.models.base import TextGenerator
from diffusellm.pipeline.locate.context import Localised, localise_by_overlap, localise_from_locate
from diffusellm.pipeline.normalise.issue import NeedsClarification, normalise_issue
from diffusellm.pipeline.plan.candidates import Plan, plan_change, plan_from_spec
from diffusellm.pipeline.settings import GenerationSettings, LocateSettings
from diffusellm.pipeline.spec import Spec
from diffusellm.pipeline.understand.graph import KnowledgeGraph
from diffusellm.pipeline.understand.style.profile import StyleProfile

log = structlog.get_logger(__name__)
Localiser = Callable[[Path, Path, str, int], Localised]
"""(work copy, knowledge graph, issue text, token budget) → the localised candidates."""


@dataclass
class Planned:
    """Phases 3–4 for one job: the spec worked from, plans best first, or a question."""

    loc: Localised
    spec: Spec | None = None
    plans: list[Plan] = field(default_factory=lambda: [])
    question: NeedsClarification | None = None
    notes: list[str] = field(default_factory=lambda: [])


def locate_localiser(index_dir: Path, model_dir: Path, options: LocateSettings | None = None) -> Localiser:
    """Localisation with `diffusellm.pipeline.locate.query` (ranked as `options` say), falling back to
    identifier overlap when the embedding model or index cannot be used."""

    def localise(root: Path, graph_db: Path, text: str, budget: int) -> Localised:
        try:
            from diffusellm.pipeline.locate.query import locate

            result = locate(
                root, text, top=50, index_dir=index_dir, model_dir=model_dir, graph_db=graph_db, options=options
            )
        except (DiffuseLLMError, OSError, ImportError, RuntimeError) as exc:
            log.warning("localise.fallback", reason=str(exc))
            return localise_by_overlap(root, graph_db, text, budget_tokens=budget)
        return localise_from_locate(root, graph_db, text, result, budget_tokens=budget)

    return localise


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
        return Planned(loc=loc, question=result)
    with KnowledgeGraph(graph_db) as graph:
        plans, dropped = plan_change(
            result, llm=llm, scorer=scorer or llm, graph=graph, loc=loc, profile=profile, options=settings.plan
        )
    return Planned(loc=loc, spec=result, plans=plans, notes=dropped)


def plan_written_spec(spec: Spec, *, root: Path, graph_db: Path, settings: GenerationSettings) -> Planned:
    """A YAML spec whose generative operations lack code: its one plan, with nearby source."""
    text = "\n".join([spec.title, spec.description, *(op.target for op in spec.operations)])
    loc = overlap_localiser(root, graph_db, text, settings.context_tokens)
    return Planned(loc=loc, spec=spec, plans=[plan_from_spec(spec)])
