"""A repository's own settings: `.github/diffusellm.yml` on its default branch, validated."""

from __future__ import annotations

import fnmatch
import shlex
from collections.abc import Sequence
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from diffusellm.config import Settings
from diffusellm.errors import ConfigError
from diffusellm.pipeline.validate.settings import CheckName

REPO_CONFIG_PATH = ".github/diffusellm.yml"
_HINT = f"fix {REPO_CONFIG_PATH} on the default branch (keys: trigger_label, draft, " \
        "allowed_paths, blocked_paths, test_command, max_attempts, require, setup, python)"
SETUP_HINT = (
    f"make the repository's tests runnable: add to {REPO_CONFIG_PATH} a `setup:` list of install "
    "commands (e.g. `pip install -e .[test]`) and `python:` (e.g. \"3.12\"), or opt out with "
    "`require: []` (the pull request then says plainly what was not checked)"
)
_PYTEST_FORMS = (("pytest",), ("python", "-m", "pytest"), ("python3", "-m", "pytest"))

Glob = Annotated[str, Field(min_length=1, max_length=200)]


class RepoConfig(BaseModel):
    """What a repository may set for itself; anything else is an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trigger_label: Annotated[str, Field(min_length=1, max_length=50)] | None = None
    draft: bool | None = None
    allowed_paths: Annotated[list[Glob], Field(max_length=100)] = []
    """fnmatch globs (`*` also matches `/`); empty: every path is allowed."""
    blocked_paths: Annotated[list[Glob], Field(max_length=100)] = [".github/*"]
    """Never changed by the bot; workflows by default, since pushing them needs extra rights."""
    test_command: Annotated[str, Field(max_length=500)] | None = None
    """`pytest ARGS...` or `python -m pytest ARGS...`; ARGS replace the configured pytest args."""
    max_attempts: int = Field(default=3, ge=1, le=10)
    require: list[CheckName] | None = None
    """Checks that must run for a pull request to open; None: the worker's `validation.require`."""
    setup: Annotated[list[Annotated[str, Field(min_length=1, max_length=1000)]], Field(max_length=20)] | None = None
    """Commands that install the test environment, run in the sandbox with the package index
    reachable; they replace the detected install steps."""
    python: Annotated[str, Field(pattern=r"^3\.[0-9]{1,2}$")] | None = None
    """The Python version the test environment is built with, e.g. "3.12"."""

    @field_validator("test_command")
    @classmethod
    def _pytest_only(cls, value: str | None) -> str | None:
        if value is not None:
            pytest_args(value)
        return value


def pytest_args(command: str) -> list[str]:
    """The arguments after `pytest` / `python -m pytest` in `command`."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise ValueError(f"cannot split test_command: {exc}") from None
    for form in _PYTEST_FORMS:
        if tuple(argv[: len(form)]) == form:
            return argv[len(form):]
    raise ValueError("test_command must run pytest (`pytest ...` or `python -m pytest ...`); "
                     "other test runners are not supported yet")


def parse_repo_config(text: str | None) -> RepoConfig:
    """Validate the file's text; None (no file) gives the defaults."""
    if text is None or not text.strip():
        return RepoConfig()
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{REPO_CONFIG_PATH} is not valid YAML: {exc}", hint=_HINT) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{REPO_CONFIG_PATH} must be a mapping of settings", hint=_HINT)
    try:
        return RepoConfig.model_validate(data)
    except ValidationError as exc:
        lines = [f"  {'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}"
                 for e in exc.errors()]
        raise ConfigError(f"{REPO_CONFIG_PATH} is invalid:\n" + "\n".join(lines),
                          hint=_HINT) from None


def path_violations(config: RepoConfig, files: Sequence[str]) -> list[str]:
    """Changed files the repository does not let the bot touch, each with the reason."""
    found: list[str] = []
    for path in files:
        blocked = next((g for g in config.blocked_paths if fnmatch.fnmatchcase(path, g)), None)
        if blocked is not None:
            found.append(f"{path} (blocked by `{blocked}`)")
        elif config.allowed_paths and not any(fnmatch.fnmatchcase(path, g)
                                              for g in config.allowed_paths):
            found.append(f"{path} (not under allowed_paths)")
    return found


def effective_settings(settings: Settings, config: RepoConfig) -> Settings:
    """`settings` with the repository's test command and required checks applied."""
    update: dict[str, object] = {}
    if config.test_command is not None:
        update["pytest_args"] = ["-p", "no:cacheprovider", *pytest_args(config.test_command)]
    if config.require is not None:
        update["require"] = list(config.require)
    if config.setup is not None or config.python is not None:
        env = settings.validation.environment
        update["environment"] = env.model_copy(update={
            "setup": config.setup if config.setup is not None else env.setup,
            "python_version": config.python or env.python_version,
        })
    if not update:
        return settings
    validation = settings.validation.model_copy(update=update)
    return settings.model_copy(update={"validation": validation})
