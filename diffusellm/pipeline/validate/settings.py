"""Phase 6 settings: which checks run and how (`validation:` in config.yaml)."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

CheckName = Literal["ruff", "pyright", "pytest", "acceptance"]


class EnvironmentSettings(BaseModel):
    """How a repository's own test environment is built (`validation.environment:`)."""

    model_config = ConfigDict(extra="forbid")

    build: bool = True
    """Build the repository's test environment from what it declares (with uv); false, or nothing
    declared: the checks run with `validation.python`."""
    network: bool = True
    """The install step (only it) may reach the package index."""
    index_url: str | None = None
    """The package index uv installs from; None: uv's default (PyPI) or UV_INDEX_URL."""
    find_links: list[str] = []
    """Local folders of wheels uv may install from (with `offline`, the only source)."""
    offline: bool = False
    install_timeout_s: int = Field(default=900, ge=10)
    max_total_mb: int = Field(default=20_000, ge=100)
    """Cached environments beyond this total are removed, least recently used first."""
    test_packages: list[str] = ["pytest", "pytest-timeout"]
    """Installed with the repository's own requirements (its own pins win): what the checks run."""
    setup: list[str] | None = None
    """Install commands replacing detection (a repository's `setup:` sets it)."""
    python_version: str | None = None
    """The Python version to build with, found on the worker; None: `validation.python`'s."""


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
    environment: EnvironmentSettings = EnvironmentSettings()

    @field_validator("extra_pythonpath")
    @classmethod
    def _relative_only(cls, value: list[str]) -> list[str]:
        for entry in value:
            path = PurePosixPath(entry)
            if path.is_absolute() or ".." in path.parts:
                raise ValueError(f"extra_pythonpath entry {entry!r} must be inside the repository")
        return value
