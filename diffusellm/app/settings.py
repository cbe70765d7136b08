"""Settings of the app server, the job store and the pulling workers (sections of Settings)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerSettings(_Section):
    """The FastAPI app: where it listens, which environment variables hold its tokens."""

    host: str = "127.0.0.1"
    port: int = Field(default=5001, ge=0, le=65535)
    admin_token_env: str = "DIFFUSELLM_ADMIN_TOKEN"
    """Name of the environment variable holding the admin token (never the token itself)."""
    worker_token_env: str = "DIFFUSELLM_WORKER_TOKEN"
    """Name of the environment variable holding the token workers send as a Bearer token."""
    in_process_worker: bool = True
    """Run one worker thread inside the app against the store (a single-box install)."""
    local_repos: list[Path] = []
    """Local git repositories the admin page may submit issues against (local mode)."""
    forwarded_allow_ips: list[str] = []
    """Addresses of reverse proxies whose X-Forwarded-For / -Proto headers are believed (uvicorn's
    `forwarded_allow_ips`); empty: no forwarded header is believed, from anyone."""
    openapi: bool = False
    """Serve the API description at /openapi.json (/docs and /redoc are never served: they load
    their scripts from a CDN)."""
    body_timeout_seconds: float = Field(default=30.0, gt=0)
    """A request body not fully received this long after the request began is answered 408."""
    inbox_retry_seconds: float = Field(default=30.0, gt=0)
    """How often the webhook inbox is looked at for deliveries to triage again; also the first
    back-off after a failed triage (doubling to 30 min)."""
    inbox_max_attempts: int = Field(default=8, ge=1)
    """Triage attempts of one delivery before it is dead (kept on disk, shown on /metrics)."""

    def worker_token(self, environ: dict[str, str] | None = None) -> str | None:
        """The worker token from the environment, or None when unset or empty."""
        return _secret(self.worker_token_env, environ)

    def admin_token(self, environ: dict[str, str] | None = None) -> str | None:
        """The admin token from the environment, or None when unset or empty."""
        return _secret(self.admin_token_env, environ)


class StoreSettings(_Section):
    """The durable job store and its timing: leases, heartbeats, the reaper, retries."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    url: str = "sqlite:///~/.local/state/diffusellm/jobs.sqlite"
    """`sqlite:///PATH` (one app instance) or `postgresql+psycopg://...` (several)."""
    lease_seconds: float = Field(default=120.0, gt=0)
    heartbeat_seconds: float = Field(default=20.0, gt=0)
    reap_interval_seconds: float = Field(default=15.0, gt=0)
    max_attempts: int = Field(default=3, ge=1)
    delivery_days: float = Field(default=30.0, gt=0)
    """Webhook delivery ids are kept this long to refuse replays (GitHub redelivers up to 3 days back)."""
    backoff_base_seconds: float = Field(default=30.0, ge=0)
    """A retry waits base × 2^(attempt-1) seconds before it may be claimed again."""

    @field_validator("url")
    @classmethod
    def _expand_home(cls, value: str) -> str:
        return expand_sqlite_url(value)

    @model_validator(mode="after")
    def _heartbeat_within_lease(self) -> StoreSettings:
        # A heartbeat slower than the lease would let every running job be reaped.
        if self.heartbeat_seconds >= self.lease_seconds:
            raise ValueError(
                f"heartbeat_seconds ({self.heartbeat_seconds}) must be shorter than "
                f"lease_seconds ({self.lease_seconds}); e.g. lease 120 and heartbeat 20"
            )
        return self


class WorkerSettings(_Section):
    """A worker that pulls jobs from the app over HTTP(S); it never needs an inbound port."""

    server_url: str | None = None
    """The app's base URL, e.g. https://bot.example.org; None runs no remote worker."""
    poll_timeout_seconds: float = Field(default=25.0, gt=0, le=60)
    worker_id: str | None = None
    """A stable name for logs and admin pages; default: host name, process id, random tag."""
    allow_plain_http: bool = False
    """Send the token over plain http:// to a host off loopback. Only for a private network you
    control (a compose network); anywhere else the token would cross the network in clear."""


def expand_sqlite_url(url: str) -> str:
    """`sqlite:///~/x.sqlite` → `sqlite:////home/me/x.sqlite`; other URLs unchanged."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and url[len(prefix):].startswith("~"):
        return prefix + str(Path(url[len(prefix):]).expanduser())
    return url


def _secret(name: str, environ: dict[str, str] | None) -> str | None:
    value = (os.environ if environ is None else environ).get(name, "")
    return value or None
