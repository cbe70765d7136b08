"""A repository's own settings: `.github/diffusellm.yml` on its default branch, validated."""

from __future__ import annotations

import fnmatch
import re
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from diffusellm.config import Settings
from diffusellm.errors import ConfigError
from diffusellm.pipeline.understand.style.guidance import read_guidance
from diffusellm.pipeline.understand.style.profile import RepoGuidance
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


# The repository's instruction files (AGENTS.md, CONTRIBUTING, copilot-instructions) may fill in
# what `.github/diffusellm.yml` leaves unset, and only in the narrowing direction: a pytest
# command, and more blocked paths. They never touch allowed_paths, secrets or the network.
_RUNNER_PREFIX = re.compile(r"^(?:(?:uv|poetry|pdm|hatch|pipenv) run\s+)?(?:(python3?)\s+-\w*m\s+)?(?=pytest\b)")


def guidance_test_command(command: str) -> str | None:
    """The pytest command an instruction file's command runs (`uv run pytest -x` → `pytest -x`);
    None for other runners (tox, make, just), which the sandbox cannot run."""
    match = _RUNNER_PREFIX.match(command.strip())
    if match is None:
        return None
    rest = command.strip()[match.end() :]
    candidate = f"{match.group(1)} -m {rest}" if match.group(1) else rest
    try:
        pytest_args(candidate)
    except ValueError:
        return None
    return candidate


def apply_guidance(config: RepoConfig, guidance: RepoGuidance) -> tuple[RepoConfig, list[str]]:
    """`config` with the test command and paths not to touch that the instruction files give, where
    the file does not set them; and one line per fact taken, naming its source."""
    taken: list[str] = []
    update: dict[str, Any] = {}
    fact = guidance.test_command
    command = guidance_test_command(fact.value) if fact is not None else None
    if config.test_command is None and fact is not None and command is not None:
        update["test_command"] = command
        taken.append(f"test command `{command}` from {fact.source}")
    extra = [f for f in guidance.protected_paths if f.value not in config.blocked_paths][:20]
    if extra:
        update["blocked_paths"] = [*config.blocked_paths, *(f.value for f in extra)]
        taken += [f"blocked path `{f.value}` from {f.source}" for f in extra]
    merged = RepoConfig.model_validate(config.model_dump() | update) if update else config
    return merged, taken


def config_with_guidance(config: RepoConfig, checkout: Path) -> tuple[RepoConfig, list[str]]:
    """`apply_guidance` with the instruction files of the checkout at `checkout`."""
    return apply_guidance(config, read_guidance(checkout))
