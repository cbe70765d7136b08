"""Phase 3, ranking: every (change kind, target) option is scored from the issue's wording, the code it
names, the localiser's order and the model's log-likelihood; the best options come first, with how sure
the ranking is and whether the issue names any of the code at all.

A small model cannot be trusted to pick a kind and a target by writing JSON (measured: the embedded
135M model got 3 of 18 held-out issues right that way); asking it instead which of a few phrasings is
likelier, against how likely each phrasing is without the issue (pointwise mutual information, which
cancels a model's taste for short or frequent strings), is a question it can answer, and one a larger
model answers better still.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from diffusellm.models.base import ModelError, TextGenerator
from diffusellm.pipeline.locate.context import Localised, Symbol
from diffusellm.pipeline.normalise.cues import (
    IssueWords,
    cued_kinds,
    described_parameters,
    mentioned_parameters,
    names_symbol,
    new_names,
    parameters,
)
from diffusellm.pipeline.normalise.prompts import choice_messages
from diffusellm.pipeline.understand.style.profile import NamingConvention

KINDS: dict[str, str] = {
    "rename_symbol": "Rename it.",
    "add_parameter": "Add a parameter to it.",
    "remove_parameter": "Remove a parameter from it.",
    "move_symbol": "Move it to another module.",
    "edit_function": "Change what it does.",
    "add_test": "Add a test for it.",
    "add_function": "Write a new function.",
}
"""Each change kind as a maintainer would say it: what the model's likelihood is measured on."""
KIND_QUESTION = "What kind of change does this issue ask for?"
TARGET_QUESTION = "Which function, method or class is this issue about?"
TOP_TARGETS = 6
"""Targets per kind that are scored (the localiser's best; it put the right one first in 22 of 24
benchmark issues)."""

CUE = 2.0
"""Log-odds for a kind the issue's wording asks for."""
KIND_PRIOR = {"edit_function": 0.5, "add_function": -1.0}
"""Most issues without refactoring words ask for changed behaviour; new functions are rarer."""
NAMED = 2.0
"""Log-odds per level of naming (1: its own name, 2: qualified)."""
PARAMETER = 2.0
"""Asked to remove a parameter the issue names and the target has, or to add a new name written as code."""
RANK = 0.7
"""Times log(1 + the target's rank among the localiser's candidates of a kind)."""
MODEL_WEIGHT = 0.35
"""Default weight of the model's log-probability among the options (its pointwise mutual information,
log-softmaxed). The embedded 135M model's preferences span ~8 nats and lean to "move" whatever the
issue says, so at 1.0 it overrode plain wording on the dev issues; 0.35 lets it break ties. A capable
model deserves more (`generation.normalise_model_weight`)."""


@dataclass(frozen=True)
class Option:
    """One way to read the issue: a change kind on a target, its score and why."""

    op: str
    target: Symbol
    score: float
    reasons: tuple[str, ...]
    cued: bool = False
    """The issue's wording asks for this kind of change."""


@dataclass(frozen=True)
class Ranking:
    """The options best first, the best one's share of the probability, and whether code is named."""

    options: tuple[Option, ...]
    confidence: float
    grounded: bool


def module_symbols(loc: Localised) -> list[Symbol]:
    """The repository's modules as symbols, those holding the best candidates first."""
    order = list(dict.fromkeys(s.qualname.rsplit(".", 1)[0] for s in loc.symbols if s.kind == "function"))
    ranked = [m for m in order if m in loc.modules] + [m for m in loc.modules if m not in order]
    return [Symbol(m, "module", m.replace(".", "/") + ".py", 1, 1) for m in ranked]


def compatible(op: str, loc: Localised) -> list[Symbol]:
    """The candidates an operation of kind `op` can target, in the localiser's order."""
    if op == "add_function":
        return module_symbols(loc)
    modules = set(loc.modules)
    kinds = {"rename_symbol": ("function", "method", "class"), "move_symbol": ("function", "class")}
    allowed = kinds.get(op, ("function", "method"))
    found = [s for s in loc.symbols if s.kind in allowed]
    if op == "move_symbol":
        found = [s for s in found if s.qualname.rsplit(".", 1)[0] in modules]
    return found


def _named(words: IssueWords, symbol: Symbol, op: str, loc: Localised) -> int:
    """How plainly the target is named; a class named counts for its constructor's parameters."""
    level = names_symbol(words, symbol)
    if op in ("add_parameter", "remove_parameter") and symbol.name == "__init__":
        owner = loc.find(symbol.qualname.rsplit(".", 1)[0])
        level = max(level, names_symbol(words, owner) if owner else 0)
    return level


def _parameter_evidence(words: IssueWords, symbol: Symbol, op: str, convention: NamingConvention) -> bool:
    if op == "remove_parameter":
        return bool(mentioned_parameters(words, symbol))
    if op == "add_parameter":
        taken = [symbol.name, *parameters(symbol)]
        return bool(described_parameters(words, convention, taken) or new_names(words, convention, taken))
    return False


def _log_softmax(values: dict[str, float]) -> dict[str, float]:
    top = max(values.values())
    total = math.log(sum(math.exp(v - top) for v in values.values())) + top
    return {k: v - total for k, v in values.items()}


def model_preference(llm: TextGenerator | None, issue: str, question: str, answers: Sequence[str]) -> dict[str, float]:
    """The model's log-probability of each answer among `answers`, from PMI against an empty issue;
    all equal when there is no model or it fails."""
    if llm is None or len(answers) < 2:
        return {a: -math.log(max(len(answers), 1)) for a in answers}
    try:
        asked, blank = choice_messages(question, issue), choice_messages(question, "")
        # every answer to one prompt, then to the other: a model that keeps the prompt it last
        # read (the transformers backend) reads each prompt once
        given = {a: llm.score(asked, a) for a in answers}
        pmi = {a: given[a] - llm.score(blank, a) for a in answers}
    except ModelError:
        return {a: -math.log(len(answers)) for a in answers}
    return _log_softmax(pmi)


def _target_answer(symbol: Symbol) -> str:
    return f"The {symbol.kind} `{symbol.qualname}`."


def rank_options(
    words: IssueWords,
    loc: Localised,
    llm: TextGenerator | None,
    *,
    parameter_naming: NamingConvention = "snake_case",
    model_weight: float = MODEL_WEIGHT,
) -> Ranking:
    """Score every change kind on each of its likeliest targets, best first."""
    cues = cued_kinds(words)
    kind_model = model_preference(llm, words.text, KIND_QUESTION, list(KINDS.values()))
    # A new function is only written when the wording asks for one: a vague issue that happens to
    # name a module must not become a made-up function in it.
    kinds = [op for op in KINDS if op != "add_function" or op in cues]
    per_kind = {op: compatible(op, loc)[:TOP_TARGETS] for op in kinds}
    targets = list(dict.fromkeys(s for found in per_kind.values() for s in found))
    target_model = model_preference(llm, words.text, TARGET_QUESTION, [_target_answer(s) for s in targets])
    options: list[Option] = []
    for op in kinds:
        phrase = KINDS[op]
        kind_score = CUE * (op in cues) + KIND_PRIOR.get(op, 0.0) + model_weight * kind_model[phrase]
        kind_reasons = (f"the wording asks to {phrase.lower().rstrip('.')}",) if op in cues else ()
        for rank, symbol in enumerate(per_kind[op]):
            named = _named(words, symbol, op, loc)
            evidence = op in cues and _parameter_evidence(words, symbol, op, parameter_naming)
            score = kind_score + NAMED * named + PARAMETER * evidence - RANK * math.log1p(rank)
            score += model_weight * target_model[_target_answer(symbol)]
            reasons = kind_reasons + (("the issue names it",) if named else ()) + (f"localiser rank {rank + 1}",)
            options.append(Option(op, symbol, score, reasons, op in cues))
    options.sort(key=lambda o: -o.score)
    if not options:
        return Ranking((), 0.0, False)
    share = 1.0 / sum(math.exp(o.score - options[0].score) for o in options)
    grounded = any(names_symbol(words, s) for s in targets)
    return Ranking(tuple(options), share, grounded)
