"""Phase 6 settings: which checks run and how (`validation:` in config.yaml)."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

CheckName = Literal["ruff", "pyright", "pytest", "acceptance"]


class ValidationSettings(BaseModel):
    """Which checks run and how (`validation:` in config.yaml)."""

    model_config = ConfigDict(extra="forbid")

    ruff: bool = True
    pyright: bool = True
    pytest: bool = True
    require: list[CheckName] = ["pytest"]
    """Checks that must run (pass or fail, not "not run" nor off): when one does not, the run
    makes no branch and no pull request. A repository's `require:` may narrow it."""
    python: str | None = None
    """Interpreter that runs the checks (must have ruff, pyright, pytest, pytest-timeout);
    default: the worker's own. It must be visible in the sandbox."""
    pytest_args: list[str] = ["-q", "-p", "no:cacheprovider"]
    test_timeout_s: int = Field(default=120, ge=1)
    """Per test, enforced by pytest-timeout."""
    extra_pythonpath: list[str] = []
    """Repository-relative directories put on PYTHONPATH (the root and `src/` always are)."""

    @field_validator("extra_pythonpath")
    @classmethod
    def _relative_only(cls, value: list[str]) -> list[str]:
        for entry in value:
            path = PurePosixPath(entry)
            if path.is_absolute() or ".." in path.parts:
                raise ValueError(f"extra_pythonpath entry {entry!r} must be inside the repository")
        return value
