"""Settings: config.yaml, then DIFFUSELLM_* environment variables, then command-line overrides; read once, validated."""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from diffusellm.app.settings import ServerSettings, StoreSettings, WorkerSettings
from diffusellm.errors import ConfigError
from diffusellm.forge.github_settings import GitHubSettings
from diffusellm.learn.settings import LearnSettings
from diffusellm.models.settings import DiffusionSettings, LLMSettings, TransformersLLM
from diffusellm.pipeline.settings import GenerationSettings
from diffusellm.pipeline.validate.settings import ValidationSettings

ENV_PREFIX = "DIFFUSELLM_"
_FILE_DATA: ContextVar[dict[str, Any] | None] = ContextVar("diffusellm_config_file", default=None)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BubblewrapSettings(_Section):
    """The bubblewrap sandbox that runs every check on untrusted code."""

    type: Literal["bubblewrap"] = "bubblewrap"
    bwrap: str = "bwrap"
    cpu_seconds: int = Field(default=600, ge=1)
    memory_mb: int = Field(default=4096, ge=64)
    processes: int = Field(default=512, ge=8)
    file_size_mb: int = Field(default=512, ge=1)
    wall_seconds: float = Field(default=900.0, gt=0)
    tmp_mb: int = Field(default=1024, ge=16)
    """Size of the sandbox's /tmp, a tmpfs: memory on top of each process's `memory_mb`."""
    workdir_mb: int = Field(default=4096, ge=16)
    """The most the work copy may hold while a check runs; over it the check is killed."""
    pass_env: list[str] = []
    """Names of the worker's environment variables allowed into the sandbox (none by default)."""
    allow_secret: list[str] = []
    """Names in `pass_env` that look like secrets (TOKEN, SECRET, PASSWORD, KEY) but may pass."""


class CommitConfig(_Section):
    """How the result is recorded in git."""

    branch_prefix: str = "diffusellm/"
    author_name: str = "diffuseLLM"
    author_email: str = "diffusellm@localhost"
    changelog: bool = True
    """Write a changelog entry in the repository's own format (none if it keeps no changelog)."""
    format_changed: bool = True
    """Format the changed lines (only those) with ruff format."""
    keep_failed: bool = False
    """Create the branch even when validation finds new failures."""


class Settings(BaseSettings):
    """Every setting of diffusellm; unknown keys are errors."""

    model_config = SettingsConfigDict(
        extra="forbid", env_prefix=ENV_PREFIX, env_nested_delimiter="__", validate_default=True
    )

    state_dir: Path = Path("~/.local/state/diffusellm")
    """Where per-repository state lives: profiles, knowledge graphs, worktrees, job reports."""
    log_level: Literal["debug", "info", "warning", "error"] = "warning"
    sandbox: BubblewrapSettings = BubblewrapSettings()
    validation: ValidationSettings = Field(default_factory=ValidationSettings)
    commit: CommitConfig = CommitConfig()
    github: GitHubSettings = Field(default_factory=GitHubSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    llm: LLMSettings = Field(default_factory=TransformersLLM)
    scorer: LLMSettings | None = None
    """The model that ranks plan candidates; null means the `llm` model."""
    normaliser: LLMSettings | None = None
    """The model that reads free-text issues into specs (causal or seq2seq); null means the `llm` model."""
    diffusion: DiffusionSettings = Field(default_factory=DiffusionSettings)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    learn: LearnSettings = Field(default_factory=LearnSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Command-line overrides win over the environment, which wins over the config file."""
        return (init_settings, env_settings, _YamlFileSource(settings_cls))

    def state_path(self) -> Path:
        """The state folder with `~` expanded."""
        return self.state_dir.expanduser()


class _YamlFileSource(PydanticBaseSettingsSource):
    """Feeds the already-read config file into pydantic-settings at the lowest priority."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return (_FILE_DATA.get() or {}).get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_FILE_DATA.get() or {})


def default_config_path() -> Path | None:
    """$DIFFUSELLM_CONFIG, else ~/.config/diffusellm/config.yaml when it exists."""
    explicit = os.environ.get(f"{ENV_PREFIX}CONFIG")
    if explicit:
        return Path(explicit)
    home = Path("~/.config/diffusellm/config.yaml").expanduser()
    return home if home.exists() else None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}", hint="pass an existing --config file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of settings")
    mapping: dict[Any, Any] = data  # pyright: ignore[reportUnknownVariableType]
    return {str(k): v for k, v in mapping.items()}


def parse_override(item: str) -> tuple[list[str], Any]:
    """`sandbox.memory_mb=2048` → (["sandbox", "memory_mb"], 2048); the value is read as YAML."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"bad override {item!r}", hint="write --set section.key=value")
    return key.strip().split("."), yaml.safe_load(raw) if raw else ""


def _nest(overrides: list[str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for item in overrides:
        path, value = parse_override(item)
        node: dict[str, Any] = data
        for part in path[:-1]:
            child: Any = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r} conflicts with another override")
            node = child  # pyright: ignore[reportUnknownVariableType]
        node[path[-1]] = value
    return data


def _allowed_keys(loc: tuple[int | str, ...]) -> list[str]:
    model: type[BaseModel] = Settings
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return sorted(model.model_fields)


def _explain(exc: ValidationError, source: str) -> ConfigError:
    lines: list[str] = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            allowed = ", ".join(_allowed_keys(err["loc"]))
            lines.append(f"  {key}: unknown setting (allowed here: {allowed})")
        else:
            lines.append(f"  {key}: {err['msg']} (got {err.get('input')!r})")
    return ConfigError(
        f"invalid configuration from {source}:\n" + "\n".join(lines),
        hint="see config.yaml in the diffusellm sources or docs/CONFIGURATION.md for every setting",
    )


def load_settings(config_path: Path | None = None, overrides: list[str] | None = None) -> Settings:
    """Read the config file (if any), apply the environment and overrides, validate once."""
    path = config_path if config_path is not None else default_config_path()
    file_data = _read_yaml(path) if path is not None else {}
    source = f"{path or 'defaults'} + {ENV_PREFIX}* environment + --set overrides"
    token = _FILE_DATA.set(file_data)
    try:
        return Settings(**_nest(overrides or []))
    except ValidationError as exc:
        raise _explain(exc, source) from None
    finally:
        _FILE_DATA.reset(token)
