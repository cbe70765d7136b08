"""Phase 5 agent collaboration: draft scaffolds, fill holes, validate, re-denoise what failed, within caps.

For each generative operation of a plan, the function's header is fixed (an edited function keeps
its own; a new function's is drafted by the LLM; a test's is named from its target) and its body
is a hole. The denoiser fills the holes (the LLM does, through `LLMFiller`, when no diffusion model
is configured). The runner's `trial` applies the operations through LibCST and validates them in
the sandbox; failures on lines of a generated function mask those statements, which are filled
again with the errors as context. The next plan is tried when a failure cannot be traced to
generated code. Every attempt is recorded; caps on attempts, tokens and wall time end the loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from diffusellm.errors import OperationError
from diffusellm.models.base import Denoiser, ModelError, TextGenerator
from diffusellm.pipeline.generate.draft import Work, start_work
from diffusellm.pipeline.generate.fill import (
    Budget,
    BudgetedDenoiser,
    BudgetedLLM,
    BudgetExhaustedError,
    Clock,
    LLMFiller,
)
from diffusellm.pipeline.generate.regions import WHOLE, Blame, WrittenFunction, blame
from diffusellm.pipeline.generate.scaffold import syntax_error_line
from diffusellm.pipeline.plan.candidates import Plan
from diffusellm.pipeline.project import Project
from diffusellm.pipeline.settings import CollaborationLimits
from diffusellm.pipeline.spec import GenerativeOperation, Operation
from diffusellm.pipeline.understand.style.profile import StyleProfile
from diffusellm.pipeline.validate.report import ValidationReport

MAX_LISTED_ERRORS = 20


class Attempt(BaseModel):
    """One version of the generated code and what became of it."""

    model_config = ConfigDict(extra="forbid")

    number: int
    plan_index: int
    operations: list[str]
    """`edit_function pkg.mod.f`, one per generative operation."""
    code: str
    validation: str
    """"passed", the checks with new failures, or why validation did not run."""
    errors: list[str] = []
    error: str | None = None
    tokens: int = 0
    regenerated: list[str] = []
    """What this attempt wrote anew: "whole body of pkg.mod.f" or "lines 4-5 of pkg.mod.f"."""


class CollaborationResult(BaseModel):
    """How the loop ended."""

    model_config = ConfigDict(extra="forbid")

    succeeded: bool
    plan_index: int | None
    operations: list[Operation]
    report: ValidationReport | None
    attempts: list[Attempt]
    stopped_because: str
    tokens_spent: int


@dataclass(frozen=True)
class TrialResult:
    """What the runner's trial of a set of operations gave: a validation, or a refusal."""

    report: ValidationReport | None
    error: str | None = None
    written: dict[int, WrittenFunction] = field(default_factory=lambda: {})


Trial = Callable[[Sequence[Operation]], TrialResult]


def summarise(report: ValidationReport) -> str:
    """`passed`, or the checks with new failures and how many, and required checks that did not run."""
    failing = [f"{c.name}: {len(c.new_failures)} new failure(s)" for c in report.checks if c.state == "failed"]
    failing += [f"not run, {missing}" for missing in report.missing]
    return "; ".join(failing) or "passed"


Repair = Callable[[], None]


@dataclass
class _Session:
    root: Path
    llm: TextGenerator
    filler: Denoiser
    trial: Trial
    budget: Budget
    limits: CollaborationLimits
    profile: StyleProfile
    nearby: str
    attempts: list[Attempt] = field(default_factory=lambda: [])
    last_ops: list[Operation] = field(default_factory=lambda: [])
    last_report: ValidationReport | None = None
    plan_index: int | None = None
    charged: int = 0

    def result(self, succeeded: bool, why: str) -> CollaborationResult:
        return CollaborationResult(
            succeeded=succeeded,
            plan_index=self.plan_index,
            operations=self.last_ops,
            report=self.last_report,
            attempts=self.attempts,
            stopped_because=why,
            tokens_spent=self.budget.spent,
        )

    def record(
        self, works: Sequence[Work], validation: str, *, error: str | None = None, errors: Sequence[str] = ()
    ) -> None:
        tokens, self.charged = self.budget.spent - self.charged, self.budget.spent
        self.attempts.append(
            Attempt(
                number=len(self.attempts) + 1,
                plan_index=self.plan_index or 0,
                operations=[f"{w.op.op} {w.op.target}" for w in works],
                code="\n".join(w.code() for w in works),
                validation=validation,
                errors=list(errors[:MAX_LISTED_ERRORS]),
                error=error,
                tokens=tokens,
                regenerated=[w.regenerated for w in works if w.regenerated],
            )
        )

    def try_plan(self, plan_index: int, plan: Plan) -> CollaborationResult | None:
        """Run one plan to success or a cap (a result), or to a dead end (None: the next plan)."""
        self.plan_index = plan_index
        try:
            if (capped := self._capped()) is not None:
                return capped
            works = self._start(plan)
            repair: Repair | None = None
            for _ in range(self.limits.max_attempts_per_plan):
                if (capped := self._capped()) is not None:
                    return capped
                if repair is not None:
                    for work in works:
                        work.regenerated = ""
                    repair()
                outcome = self._round(plan, works)
                if outcome is True:
                    return self.result(True, "validation passed")
                if outcome is None:
                    return None
                repair = outcome
        except BudgetExhaustedError as exc:
            return self.result(False, exc.reason)
        except OperationError as exc:
            self.record([], "not run: the plan could not be drafted", error=exc.message)
        except ModelError as exc:
            self.record([], "not run: the model failed", error=exc.message)
        return None

    def _capped(self) -> CollaborationResult | None:
        if len(self.attempts) < self.limits.max_attempts:
            return None
        return self.result(False, f"the attempt cap of {self.limits.max_attempts} was reached")

    def _start(self, plan: Plan) -> list[Work]:
        project = Project.load(self.root)
        works: list[Work] = []
        for index, op in enumerate(plan.operations):
            if isinstance(op, GenerativeOperation) and op.needs_code:
                work = start_work(index, op, project, self.llm, self.profile, self.limits.body_tokens, self.nearby)
                work.fill(self.filler, self.nearby, (), self.limits.temperature, len(self.attempts))
                works.append(work)
        return works

    def _round(self, plan: Plan, works: list[Work]) -> Repair | Literal[True] | None:
        """Check one version: True when it passed, a repair to make, or None for a dead end."""
        for work in works:
            problem = syntax_error_line(work.code())
            if problem is not None:
                line, message = problem
                self.record(
                    works, "not run: syntax error in generated code", error=f"{work.op.target} line {line}: {message}"
                )
                return self._syntax_repair(work, line, message)
        try:
            ops = _concrete(plan.operations, works)
        except OperationError as exc:
            self.record(works, "not run: generated code rejected", error=exc.message)
            return None
        return self._validate(works, ops)

    def _syntax_repair(self, work: Work, line: int, message: str) -> Repair:
        def repair() -> None:
            work.refill_holes_at([line])
            errors = [f"line {line}: SyntaxError: {message}"]
            work.fill(self.filler, self.nearby, errors, self.limits.temperature, len(self.attempts))

        return repair

    def _validate(self, works: list[Work], ops: list[Operation]) -> Repair | Literal[True] | None:
        outcome = self.trial(ops)
        self.last_ops, self.last_report = ops, outcome.report  # the work copy now holds this version
        if outcome.report is None:
            self.record(works, "not run: the operations were refused", error=outcome.error)
            return None
        failures = [f for c in outcome.report.checks for f in c.new_failures]
        self.record(works, summarise(outcome.report), errors=failures)
        if outcome.report.passed:
            return True
        for work in works:
            work.written = outcome.written.get(work.index)
        found = _by_work(blame(outcome.report, outcome.written, ops), works)
        return self._region_repair(works, found) if found.lines else None

    def _region_repair(self, works: list[Work], found: Blame) -> Repair:
        def repair() -> None:
            for position, lines in found.lines.items():
                work = works[position]
                errors = found.messages.get(position, []) + found.unmapped[:3]
                # Lines the linters name are the fault; a failing test alone blames the whole body.
                work.mask(lines - {WHOLE}, self.limits.body_tokens)
                work.fill(self.filler, self.nearby, errors, self.limits.temperature, len(self.attempts))

        return repair


def _by_work(found: Blame, works: Sequence[Work]) -> Blame:
    """Re-key a blame from operation indexes to positions in `works` (generated functions only)."""
    by_op = {w.index: i for i, w in enumerate(works)}
    keyed = Blame(unmapped=list(found.unmapped))
    for index, lines in found.lines.items():
        position = by_op.get(index)
        if position is None:
            keyed.unmapped.extend(found.messages.get(index, []))
            continue
        keyed.lines[position] = set(lines)
        keyed.messages[position] = list(found.messages.get(index, []))
    return keyed


def _concrete(operations: Sequence[Operation], works: Sequence[Work]) -> list[Operation]:
    """The plan's operations with the generated code put in."""
    by_index = {w.index: w for w in works}
    return [by_index[i].operation() if i in by_index else op for i, op in enumerate(operations)]


def collaborate(
    plans: Sequence[Plan],
    *,
    root: Path,
    llm: TextGenerator,
    trial: Trial,
    profile: StyleProfile,
    denoiser: Denoiser | None = None,
    limits: CollaborationLimits | None = None,
    nearby: str = "",
    clock: Clock = time.monotonic,
) -> CollaborationResult:
    """Try the plans best first until one validates or a cap is reached; every attempt recorded."""
    limits = limits or CollaborationLimits()
    budget = Budget(limits.max_tokens, limits.max_seconds, clock)
    budgeted = BudgetedLLM(llm, budget)
    filler: Denoiser = BudgetedDenoiser(denoiser, budget) if denoiser is not None else LLMFiller(budgeted)
    session = _Session(root, budgeted, filler, trial, budget, limits, profile, nearby)
    tried = plans[: limits.max_plans]
    for plan_index, plan in enumerate(tried):
        outcome = session.try_plan(plan_index, plan)
        if outcome is not None:
            return outcome
    return session.result(False, f"every plan tried failed ({len(tried)} of {len(plans)})")


def explain(result: CollaborationResult) -> str:
    """What was tried and why it stopped, in Markdown, for the job report and the summary."""
    head = "succeeded" if result.succeeded else "did not succeed"
    lines = [
        f"Generation {head} after {len(result.attempts)} attempt(s); it stopped because "
        f"{result.stopped_because}. Tokens generated: about {result.tokens_spent}.",
        "",
    ]
    for a in result.attempts:
        what = ", ".join(a.operations) or "no generated code"
        redo = f" (regenerated: {'; '.join(a.regenerated)})" if a.regenerated else ""
        lines.append(f"{a.number}. plan {a.plan_index + 1}, {what}{redo}: {a.validation}")
        if a.error:
            lines.append(f"   - {a.error}")
        lines.extend(f"   - {e}" for e in a.errors[:5])
    return "\n".join(lines) + "\n"
