"""GitHub App settings: the `github:` config section; secrets come from the environment only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from diffusellm.errors import ConfigError

PUBLIC_API_URL = "https://api.github.com"
KEY_HINT = (
    "set PRIVATE_KEY to the PEM text of the App's private key, or PRIVATE_KEY_PATH to the "
    ".pem file (GitHub: App settings → Private keys → Generate a private key)"
)


class GitHubSettings(BaseModel):
    """How the bot behaves on GitHub (`github:` in config.yaml); no secrets here."""

    model_config = ConfigDict(extra="forbid")

    trigger_label: str = Field(default="diffusellm", min_length=1, max_length=50)
    """Adding this label to an issue queues a run (.github/diffusellm.yml may rename it)."""
    command: str = Field(default="/diffusellm", pattern=r"^/[a-z][a-z0-9-]*$")
    """Comment commands start with this word: `/diffusellm run`."""
    draft_prs: bool = True
    allowed_bots: list[str] = []
    """Bot logins (e.g. `renovate[bot]`) whose labels and commands count; other bots are refused."""
    app_slug: str | None = None
    """The App's slug (its `@name`); fetched with GET /app when not set."""
    base_url: str = PUBLIC_API_URL
    """REST API root; GHE_HOST in the environment overrides it with https://HOST/api/v3."""
    seconds_between_requests: float = Field(default=0.25, ge=0)
    seconds_between_writes: float = Field(default=1.0, ge=0)
    """GitHub asks integrations to space mutating requests by at least one second."""
    max_retries: int = Field(default=5, ge=0, le=20)
    secondary_rate_wait_s: float = Field(default=60.0, ge=0)
    max_rate_limit_wait_s: float = Field(default=900.0, ge=0)
    """Give up (and let the job be retried later) when GitHub asks to wait longer than this."""
    token_refresh_margin_s: int = Field(default=300, ge=0, le=3000)
    """Installation tokens live an hour; a new one is minted this long before the old expires."""
    request_timeout_s: float = Field(default=30.0, gt=0)


@dataclass(frozen=True)
class GitHubSecrets:
    """What only the environment may provide (Probot's variable names)."""

    app_id: str | None = None
    private_key: str | None = field(default=None, repr=False)
    webhook_secret: str | None = field(default=None, repr=False)
    ghe_host: str | None = None

    def require_app(self) -> tuple[str, str]:
        """(app_id, private_key) or a ConfigError saying which variable is missing."""
        if not self.app_id:
            raise ConfigError("APP_ID is not set", hint="set APP_ID to the GitHub App's numeric id")
        if not self.private_key:
            raise ConfigError("no GitHub App private key given", hint=KEY_HINT)
        return self.app_id, self.private_key


def _read_key(env: Mapping[str, str]) -> str | None:
    inline, path = env.get("PRIVATE_KEY"), env.get("PRIVATE_KEY_PATH")
    if inline and path:
        raise ConfigError("both PRIVATE_KEY and PRIVATE_KEY_PATH are set", hint="keep only one")
    if path:
        try:
            text = Path(path).expanduser().read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read PRIVATE_KEY_PATH {path}: {exc.strerror}",
                              hint=KEY_HINT) from None
    elif inline:
        # Many hosts cannot hold multi-line variables; accept the key with literal \n, like Probot.
        text = inline.replace("\\n", "\n")
    else:
        return None
    if "-----BEGIN" not in text or "PRIVATE KEY-----" not in text:
        raise ConfigError("the GitHub App private key is not a PEM private key", hint=KEY_HINT)
    return text


def secrets_from_env(env: Mapping[str, str]) -> GitHubSecrets:
    """APP_ID, PRIVATE_KEY or PRIVATE_KEY_PATH, WEBHOOK_SECRET and GHE_HOST from `env`."""
    app_id = env.get("APP_ID") or None
    if app_id is not None and not app_id.strip().isdigit():
        raise ConfigError(f"APP_ID must be the App's numeric id, got {app_id!r}",
                          hint="see the App's settings page, 'App ID'")
    host = (env.get("GHE_HOST") or "").strip().removeprefix("https://").strip("/") or None
    return GitHubSecrets(
        app_id=app_id.strip() if app_id else None,
        private_key=_read_key(env),
        webhook_secret=env.get("WEBHOOK_SECRET") or None,
        ghe_host=host,
    )


def api_url(settings: GitHubSettings, secrets: GitHubSecrets) -> str:
    """The REST root: https://GHE_HOST/api/v3 for GitHub Enterprise Server, else `base_url`."""
    if secrets.ghe_host:
        return f"https://{secrets.ghe_host}/api/v3"
    return settings.base_url.rstrip("/")
