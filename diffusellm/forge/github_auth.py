"""GitHub App authentication: JWT from the App key, installation tokens scoped to one repository."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from github import Auth, Github, GithubException, GithubRetry

from diffusellm.forge.base import ForgeError
from diffusellm.forge.github_settings import GitHubSettings
from diffusellm.forge.outage import outage_error

# What the worker's token may do, and why (docs/DEPLOY.md lists the same):
WORKER_PERMISSIONS: Mapping[str, str] = {
    "contents": "write",        # clone, push the bot's branch, read .github/diffusellm.yml
    "issues": "write",          # read issues and comments, post and edit the status comment, react
    "pull_requests": "write",   # open and update the draft pull request
    "checks": "write",          # the validation check run
    "metadata": "read",         # repository metadata and collaborator permissions
}
# What the webhook side's token may do: read and reply, never push.
TRIAGE_PERMISSIONS: Mapping[str, str] = {
    "contents": "read", "issues": "write", "pull_requests": "write", "metadata": "read",
}


def make_client(auth: Auth.Auth, api_url: str, settings: GitHubSettings) -> Github:
    """A PyGithub client that honours GitHub's rate limits.

    GithubRetry waits for Retry-After, for x-ratelimit-reset on a primary limit and
    `secondary_rate_wait` on a secondary one; writes are spaced by `seconds_between_writes`.
    https://docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-the-rest-api
    """
    retry = GithubRetry(
        total=settings.max_retries, backoff_factor=1.0,
        # 500 is left out: a POST that failed with 500 may have happened (a duplicate comment).
        status_forcelist=[429, 502, 503, 504],
        secondary_rate_wait=settings.secondary_rate_wait_s,
        max_rate_limit_wait=settings.max_rate_limit_wait_s,
    )
    return Github(
        auth=auth, base_url=api_url, retry=retry, timeout=int(settings.request_timeout_s),
        per_page=100, seconds_between_requests=settings.seconds_between_requests,
        seconds_between_writes=settings.seconds_between_writes, lazy=True,
    )


@dataclass(frozen=True)
class _Token:
    value: str
    expires_at: float


def _expiry(value: Any) -> float:
    text = str(value).replace("Z", "+00:00")
    return dt.datetime.fromisoformat(text).timestamp()


class InstallationTokens:
    """Mints installation tokens (POST /app/installations/{id}/access_tokens) limited to one
    repository and `permissions`, and reuses each until `margin_s` before it expires."""

    def __init__(self, app_client: Github, *, permissions: Mapping[str, str], margin_s: int,
                 clock: Callable[[], float] = time.time) -> None:
        self._app = app_client
        self._permissions = dict(permissions)
        self._margin = margin_s
        self._clock = clock
        self._cache: dict[tuple[int, str], _Token] = {}
        self._lock = threading.Lock()

    def token(self, installation_id: int, repo_full_name: str) -> str:
        """A token valid for at least `margin_s` more seconds."""
        key = (installation_id, repo_full_name)
        with self._lock:
            cached = self._cache.get(key)
            if cached is None or cached.expires_at - self._margin <= self._clock():
                cached = self._mint(installation_id, repo_full_name)
                self._cache[key] = cached
            return cached.value

    def _mint(self, installation_id: int, repo_full_name: str) -> _Token:
        body = {"repositories": [repo_full_name.split("/", 1)[1]],
                "permissions": self._permissions}
        try:
            _, data = self._app.requester.requestJsonAndCheck(
                "POST", f"/app/installations/{installation_id}/access_tokens", input=body)
        except GithubException as exc:
            raise ForgeError(
                f"GitHub refused an installation token for {repo_full_name} "
                f"(installation {installation_id}): {exc.status} {exc.message or ''}".strip(),
                hint="check that the App is installed on the repository and was granted "
                     "the permissions in docs/DEPLOY.md",
                retryable=exc.status >= 500 or exc.status == 429) from None
        except (requests.RequestException, OSError) as exc:
            if (error := outage_error(exc, f"minting a token for {repo_full_name}")) is None:
                raise
            raise error from exc
        return _Token(value=str(data["token"]), expires_at=_expiry(data["expires_at"]))

    def installation_for(self, repo_full_name: str) -> int:
        """The App's installation id on a repository (GET /repos/{owner}/{repo}/installation)."""
        try:
            _, data = self._app.requester.requestJsonAndCheck(
                "GET", f"/repos/{repo_full_name}/installation")
        except GithubException as exc:
            raise ForgeError(f"GitHub: finding the App's installation on {repo_full_name} failed: "
                             f"{exc.status} {exc.message or ''}".strip(),
                             hint="install the App on the repository (docs/DEPLOY.md)",
                             retryable=exc.status >= 500 or exc.status == 429) from None
        except (requests.RequestException, OSError) as exc:
            if (error := outage_error(exc, f"finding the App's installation on {repo_full_name}")) is None:
                raise
            raise error from exc
        return int(data["id"])


class InstallationAuth(Auth.Auth):
    """PyGithub authentication that asks `tokens` for a fresh token on every request."""

    def __init__(self, tokens: InstallationTokens, installation_id: int, repo: str) -> None:
        self._tokens = tokens
        self._installation_id = installation_id
        self._repo = repo

    @property
    def token_type(self) -> str:
        """GitHub accepts `token` for installation tokens."""
        return "token"

    @property
    def token(self) -> str:
        """The current token (minted again shortly before expiry)."""
        return self._tokens.token(self._installation_id, self._repo)

    @property
    def _masked_token(self) -> str:
        return "token (removed)"
