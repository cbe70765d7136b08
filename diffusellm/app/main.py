"""Wiring of `diffusellm serve`: the job store, webhook route, triage, executor and app from one `Settings`."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from fastapi import FastAPI

from diffusellm.app.admin.routes import admin_router
from diffusellm.app.inbox import state_inbox
from diffusellm.app.metrics import InboxCollector
from diffusellm.app.recovery import InboxRecovery, InboxTriage
from diffusellm.app.reports import reports_dir
from diffusellm.app.router import EventRouter
from diffusellm.app.server import create_app, metrics
from diffusellm.app.triage import TriageContext, register
from diffusellm.app.webhooks import webhook_router
from diffusellm.config import Settings
from diffusellm.errors import ConfigError
from diffusellm.forge.base import Forge
from diffusellm.forge.github import GitHubApp
from diffusellm.forge.github_auth import TRIAGE_PERMISSIONS
from diffusellm.forge.github_settings import GitHubSecrets, secrets_from_env
from diffusellm.jobs.store import SqlJobStore
from diffusellm.worker.execute import ForgeFactory, make_executor
from diffusellm.worker.models import configured_models
from diffusellm.worker.sandbox import sandbox_from_settings


def _forges(settings: Settings, secrets: GitHubSecrets, *, triage: bool) -> ForgeFactory:
    if not secrets.app_id:
        return _no_app
    if triage:
        return GitHubApp.from_secrets(settings.github, secrets, permissions=TRIAGE_PERMISSIONS).forge
    return GitHubApp.from_secrets(settings.github, secrets).forge


def _no_app(repo: str, installation_id: int | None) -> Forge:
    raise ConfigError(
        f"an event for {repo} needs the GitHub App, but APP_ID is not set",
        hint="set APP_ID and PRIVATE_KEY or PRIVATE_KEY_PATH (docs/DEPLOY.md)",
    )


def build_app(
    settings: Settings, environ: Mapping[str, str] | None = None, *, local_repos: Sequence[Path] | None = None
) -> FastAPI:
    """The whole app: worker API, webhooks (when WEBHOOK_SECRET is set), admin pages (when the
    admin token is set), health, metrics, embedded worker.

    `local_repos` are the local repositories the admin pages may submit issues against.
    """
    env = dict(os.environ if environ is None else environ)
    secrets = secrets_from_env(env)
    store = SqlJobStore(settings.store.url, backoff_base_seconds=settings.store.backoff_base_seconds)
    inbox = state_inbox(settings.state_path())
    events = register(
        EventRouter(),
        TriageContext(store=store, settings=settings.github, forges=_forges(settings, secrets, triage=True)),
    )
    execute = None
    if settings.server.in_process_worker:
        execute = make_executor(
            forges=_forges(settings, secrets, triage=False),
            settings=settings,
            sandbox=sandbox_from_settings(settings, env),
            options=settings.github,
            models=configured_models(settings),
        )

    counters = metrics()
    triage = InboxTriage(store, events, inbox, counters, retry_base_s=settings.server.inbox_retry_seconds,
                         max_attempts=settings.server.inbox_max_attempts)
    router = webhook_router(
        store=store, secret=secrets.webhook_secret, events=events, inbox=inbox, triage=triage.process,
        count=lambda event, outcome: counters.webhook_deliveries.labels(event=event, outcome=outcome).inc(),
    )
    admin = admin_router(
        store=store,
        settings=settings,
        environ=env,
        local_repos=settings.server.local_repos if local_repos is None else local_repos,
        inbox=inbox,
    )
    return create_app(
        store=store,
        server=settings.server,
        store_settings=settings.store,
        routers=[router, admin],
        execute=execute,
        on_shutdown=[store.close],
        environ=env,
        reports_dir=reports_dir(settings.state_path()),
        counters=counters,
        # Leftovers of a previous process are triaged in the background: the port answers at once.
        services=[InboxRecovery(triage, settings.server.inbox_retry_seconds)],
        collectors=[InboxCollector(inbox.summary)],
    )
