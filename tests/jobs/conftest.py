"""Job-store fixtures: every store test runs on SQLite and on a real PostgreSQL 15."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
PG_SCRIPT = ROOT / "scripts" / "pg.sh"
URL_ENV = "DIFFUSELLM_TEST_POSTGRES_URL"


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def _libpq(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def _pg(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(PG_SCRIPT), command], capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """A PostgreSQL superuser URL: $DIFFUSELLM_TEST_POSTGRES_URL, else one scripts/pg.sh starts.

    Without PostgreSQL the tests fail under CI and are skipped elsewhere.
    """
    url = os.environ.get(URL_ENV)
    started = False
    if not url:
        was_running = _pg("url").returncode == 0
        done = _pg("start")
        if done.returncode != 0 or not done.stdout.strip():
            _unavailable(f"scripts/pg.sh start failed: {done.stderr.strip()[-800:]}")
        url, started = done.stdout.strip().splitlines()[-1], not was_running
    try:
        with psycopg.connect(_libpq(url), connect_timeout=10) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        _unavailable(f"cannot connect to {url}: {exc}")
    yield url
    if started:
        _pg("stop")


def _unavailable(why: str) -> NoReturn:
    message = (f"PostgreSQL is needed for the job-store tests and is not available: {why}. "
               f"Install PostgreSQL 15 (server binaries in /usr/lib/postgresql/15/bin) or set "
               f"{URL_ENV} to a superuser URL.")
    if _in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    name = f"dl_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(pg_admin_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(_libpq(pg_admin_url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on an SQLite file and on a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.sqlite'}"
    url: str = request.getfixturevalue("pg_url")
    return url
