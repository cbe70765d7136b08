"""The configured sandbox, built once from `Settings` for every entry point (CLI, app, remote worker)."""

from __future__ import annotations

from collections.abc import Mapping

from diffusellm.config import Settings
from diffusellm.errors import ConfigError
from diffusellm.forge.gitauth import TOKEN_ENV
from diffusellm.pipeline.validate.sandbox import BubblewrapSandbox, Limits, check_bubblewrap

SECRET_ENV_NAMES = frozenset(
    {
        "PRIVATE_KEY",
        "PRIVATE_KEY_PATH",
        "WEBHOOK_SECRET",
        "APP_ID",
        TOKEN_ENV,
        "DIFFUSELLM_WORKER_TOKEN",
        "GITHUB_TOKEN",
        "GH_TOKEN",
    }
)


def sandbox_from_settings(settings: Settings, environ: Mapping[str, str]) -> BubblewrapSandbox:
    """The configured bubblewrap sandbox; refuses to pass any secret variable into it."""
    cfg = settings.sandbox
    leaking = sorted(SECRET_ENV_NAMES.intersection(cfg.pass_env))
    if leaking:
        raise ConfigError(
            f"sandbox.pass_env names secrets: {', '.join(leaking)}",
            hint="checks run untrusted code; never pass credentials into them",
        )
    check_bubblewrap(cfg.bwrap)
    limits = Limits(
        cpu_seconds=cfg.cpu_seconds,
        memory_mb=cfg.memory_mb,
        processes=cfg.processes,
        file_size_mb=cfg.file_size_mb,
        wall_seconds=cfg.wall_seconds,
    )
    passed = {name: environ[name] for name in cfg.pass_env if name in environ}
    return BubblewrapSandbox(bwrap=cfg.bwrap, limits=limits, pass_env=passed)
