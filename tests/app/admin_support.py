"""Helpers for the admin page tests: a client on a real SQLite store, the login form, CSRF tokens."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from diffusellm.app.admin.routes import admin_router
from diffusellm.app.metrics import Metrics
from diffusellm.app.server import create_app
from diffusellm.app.settings import ServerSettings
from diffusellm.config import Settings
from diffusellm.jobs.store import Clock, SqlJobStore

TOKEN = "admin-token-for-tests-0123456789"
ENV = {"DIFFUSELLM_ADMIN_TOKEN": TOKEN}


def admin_client(store: SqlJobStore, settings: Settings, repo: Path, env: dict[str, str] = ENV,
                 clock: Clock | None = None) -> TestClient:
    """The admin pages alone on `store` (whose clock they share), not following redirects."""
    router = admin_router(store=store, settings=settings, environ=env, local_repos=[repo], clock=clock)
    app = create_app(store=store, server=ServerSettings(in_process_worker=False), routers=[router],
                     counters=Metrics())
    return TestClient(app, follow_redirects=False)


def csrf_of(html: str) -> str:
    """The CSRF token a page carries."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def login(client: TestClient, token: str = TOKEN) -> str:
    """Log in through the form; returns the CSRF token a signed-in page carries, for later posts."""
    page = client.get("/admin/login")
    assert page.status_code == 200
    done = client.post("/admin/login", data={"csrf_token": csrf_of(page.text), "token": token})
    assert done.status_code == 303, done.text
    return csrf_of(client.get("/admin/jobs").text)
