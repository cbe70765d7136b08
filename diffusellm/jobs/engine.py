"""Database engines for the job store (SQLite in WAL mode, or PostgreSQL) and schema upgrades."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import ConnectionPoolEntry

from diffusellm.errors import ConfigError

MIGRATIONS = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_S = 30.0
# Alembic keeps its migration context in a module global: one upgrade per process at a time.
# Several processes (app instances) are kept apart by the database itself (see migrations/env.py).
_UPGRADE_LOCK = threading.Lock()
_URL_HINT = "set store.url to sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DB"


def parse_store_url(url: str) -> URL:
    """Validate a store URL; `postgresql://` means the psycopg 3 driver."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"store.url {url!r} is not a database URL", hint=_URL_HINT) from None
    backend = parsed.get_backend_name()
    if backend == "postgresql" and parsed.drivername == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise ConfigError(
                f"store.url {url!r} names no database file",
                hint="jobs must survive a restart and be shared by threads: use sqlite:///PATH",
            )
        return parsed
    if backend == "postgresql":
        return parsed
    raise ConfigError(f"store.url {url!r}: unsupported database {backend!r}", hint=_URL_HINT)


def make_engine(url: str) -> Engine:
    """An engine whose transactions are safe with several threads and processes."""
    parsed = parse_store_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    return sa.create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _sqlite_engine(url: URL) -> Engine:
    path = Path(str(url.database)).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        url.set(database=str(path)),
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
        pool_size=10,
        max_overflow=20,
    )
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # The driver's own transaction handling is off (isolation_level None) so that _sqlite_on_begin
    # decides how a transaction starts. See https://docs.sqlalchemy.org/en/20/dialects/sqlite.html
    # ("Serializable isolation / Savepoints / Transactional DDL").
    conn: sqlite3.Connection = dbapi_connection
    conn.isolation_level = None
    conn.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")


def _sqlite_on_begin(conn: Connection) -> None:
    # BEGIN IMMEDIATE takes the write lock up front (waiting up to the busy timeout), so a
    # read-then-write transaction such as claim can never be overtaken between its two steps.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def alembic_config(engine: Engine) -> Config:
    """An Alembic config pointing at the packaged migrations; no alembic.ini needed."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade_database(url: str | Engine) -> None:
    """Create or upgrade the job-store schema to the newest revision (`alembic upgrade head`)."""
    engine = url if isinstance(url, Engine) else make_engine(url)
    try:
        with _UPGRADE_LOCK:
            command.upgrade(alembic_config(engine), "head")
    finally:
        if not isinstance(url, Engine):
            engine.dispose()


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at, or None before the first upgrade."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
