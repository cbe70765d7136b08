"""The configured sandbox, built once from `Settings` for every entry point (CLI, app, remote worker)."""

from __future__ import annotations

from collections.abc import Mapping

from diffusellm.config import Settings
from diffusellm.errors import ConfigError
from diffusellm.forge.gitauth import TOKEN_ENV
from diffusellm.models.settings import OpenAILLM
from diffusellm.pipeline.validate.sandbox import BubblewrapSandbox, Limits, check_bubblewrap

SECRET_ENV_NAMES = frozenset(
    {
        "PRIVATE_KEY",
        "PRIVATE_KEY_PATH",
        "WEBHOOK_SECRET",
        "APP_ID",
        TOKEN_ENV,
        "DIFFUSELLM_WORKER_TOKEN",
        "DIFFUSELLM_ADMIN_TOKEN",
        "GITHUB_TOKEN",
        "GH_TOKEN",
        "OPENAI_API_KEY",
    }
)
"""Variables diffusellm reads secrets from by default; the configured names are added to these."""
SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "KEY")


def own_secret_names(settings: Settings) -> frozenset[str]:
    """Every variable name the app or worker reads a secret from, as configured."""
    models = (settings.llm, settings.scorer, settings.normaliser)
    keys = {m.api_key_env for m in models if isinstance(m, OpenAILLM) and m.api_key_env}
    server = {settings.server.admin_token_env, settings.server.worker_token_env}
    return SECRET_ENV_NAMES | keys | server


def refused_pass_env(settings: Settings) -> list[str]:
    """Names in `sandbox.pass_env` that must not reach the sandbox: our own secrets always,
    anything that looks like a secret unless `sandbox.allow_secret` lists it."""
    cfg = settings.sandbox
    own = own_secret_names(settings)
    allowed = set(cfg.allow_secret)

    def refused(name: str) -> bool:
        looks_secret = any(word in name.upper() for word in SECRET_WORDS)
        return name in own or (looks_secret and name not in allowed)

    return sorted({name for name in cfg.pass_env if refused(name)})


def sandbox_from_settings(settings: Settings, environ: Mapping[str, str]) -> BubblewrapSandbox:
    """The configured bubblewrap sandbox; refuses to pass any secret variable into it."""
    cfg = settings.sandbox
    leaking = refused_pass_env(settings)
    if leaking:
        raise ConfigError(
            f"sandbox.pass_env names secrets: {', '.join(leaking)}",
            hint="checks run untrusted code; never pass credentials into them (a variable that only "
            "looks like one may be listed in sandbox.allow_secret; diffusellm's own never can)",
        )
    check_bubblewrap(cfg.bwrap)
    limits = Limits(
        cpu_seconds=cfg.cpu_seconds,
        memory_mb=cfg.memory_mb,
        processes=cfg.processes,
        file_size_mb=cfg.file_size_mb,
        wall_seconds=cfg.wall_seconds,
        tmp_mb=cfg.tmp_mb,
        workdir_mb=cfg.workdir_mb,
    )
    passed = {name: environ[name] for name in cfg.pass_env if name in environ}
    return BubblewrapSandbox(bwrap=cfg.bwrap, limits=limits, pass_env=passed)
