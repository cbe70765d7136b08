"""Phase 6 data: the validation report (each check, its command, state and new failures)."""

from __future__ import annotations

from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, model_validator

from diffusellm.pipeline.validate.environment import EnvironmentInfo
from diffusellm.pipeline.validate.settings import CheckName

__all__ = ["CheckName", "CheckResult", "CheckState", "ValidationReport"]

CheckState = Literal["passed", "failed", "not_run", "off"]
"""passed: ran, nothing new failed; failed: ran, new failures; not_run: could not run (the reason
says why); off: switched off by configuration. Only `passed` is ever shown or counted as passed."""


class CheckResult(BaseModel):
    """One check run on the base commit and on the change; only new failures count."""

    model_config = ConfigDict(extra="forbid")

    name: CheckName
    command: list[str]
    state: CheckState = "passed"
    passed: bool = False
    """True exactly when `state` is passed (kept for readers of stored reports)."""
    new_failures: list[str] = []
    """Failures present with the change and absent on the base commit, each one readable line."""
    base_failures: int = 0
    head_failures: int = 0
    tests_run: int = 0
    """Tests pytest ran on the change (pytest, acceptance); 0 for ruff and pyright, whose
    coverage `scope` names."""
    scope: str = ""
    """What the check covered, e.g. "3 changed files" or "tests/test_a.py (selected by call graph)"."""
    skipped_reason: str | None = None
    """Why the check did not run (state not_run or off)."""
    output_tail: str = ""
    """The last lines of the check's output on the change, for the report."""
    duration_s: float = 0.0

    @model_validator(mode="before")
    @classmethod
    def _one_truth(cls, data: Any) -> Any:
        """Derive `state` from older fields when it is not given; `passed` always follows it."""
        if not isinstance(data, dict):
            return data
        fields = dict(cast(dict[str, Any], data))
        if "state" not in fields:
            if fields.get("skipped_reason"):
                fields["state"] = "not_run"
            else:
                fields["state"] = "passed" if fields.get("passed") else "failed"
        fields["passed"] = fields["state"] == "passed"
        return fields


class ValidationReport(BaseModel):
    """All checks of one validation, and which of them had to run."""

    model_config = ConfigDict(extra="forbid")

    checks: list[CheckResult] = []
    required: list[CheckName] = []
    """Checks that had to run (`validation.require`, narrowed by the repository's config)."""
    environment: EnvironmentInfo | None = None
    """The repository's environment the tests ran in; None: the checks' own interpreter."""

    @property
    def failed(self) -> bool:
        """True when a check found a new failure."""
        return any(c.state == "failed" for c in self.checks)

    @property
    def missing(self) -> list[str]:
        """Required checks that did not run, each with the reason."""
        states = {c.name: c for c in self.checks}
        found: list[str] = []
        for name in self.required:
            check = states.get(name)
            if check is None:
                found.append(f"{name}: not part of this validation")
            elif check.state in ("not_run", "off"):
                found.append(f"{name}: {check.skipped_reason or check.state}")
        return found

    @property
    def unchecked(self) -> list[str]:
        """Every check that did not run, required or not, with the reason."""
        return [
            f"{c.name}: {c.skipped_reason or c.state}"
            for c in self.checks if c.state in ("not_run", "off")
        ]

    @property
    def passed(self) -> bool:
        """True when no check found a new failure and every required check ran."""
        return not self.failed and not self.missing
