"""Phase 6 data: the validation report (each check, its command, result and new failures)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

CheckName = Literal["ruff", "pyright", "pytest", "acceptance"]


class CheckResult(BaseModel):
    """One check run on the base commit and on the change; only new failures count."""

    model_config = ConfigDict(extra="forbid")

    name: CheckName
    command: list[str]
    passed: bool
    new_failures: list[str] = []
    """Failures present with the change and absent on the base commit, each one readable line."""
    base_failures: int = 0
    head_failures: int = 0
    scope: str = ""
    """What the check covered, e.g. "3 changed files" or "tests/test_a.py (selected by call graph)"."""
    skipped_reason: str | None = None
    output_tail: str = ""
    """The last lines of the check's output on the change, for the report."""
    duration_s: float = 0.0


class ValidationReport(BaseModel):
    """All checks of one validation."""

    model_config = ConfigDict(extra="forbid")

    checks: list[CheckResult] = []

    @property
    def passed(self) -> bool:
        """True when no check found a new failure."""
        return all(c.passed for c in self.checks)
