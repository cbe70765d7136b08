"""Store URLs: what is accepted, what is refused with a hint, and SQLite's locking set-up."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from diffusellm.app.settings import StoreSettings
from diffusellm.errors import ConfigError
from diffusellm.jobs.engine import make_engine, parse_store_url


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "mysql://u@h/db", "not a url"])
def test_unusable_urls_are_refused_with_a_hint(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_store_url(url)
    assert caught.value.hint


def test_plain_postgresql_url_uses_psycopg() -> None:
    assert parse_store_url("postgresql://bot@db:5432/jobs").drivername == "postgresql+psycopg"
    assert parse_store_url("postgresql+psycopg://bot@db/jobs").drivername == "postgresql+psycopg"


def test_home_in_sqlite_url_is_expanded() -> None:
    url = StoreSettings().url
    assert url.startswith("sqlite:////") and "~" not in url
    assert url.endswith("/.local/state/diffusellm/jobs.sqlite")


def test_sqlite_file_uses_wal_and_waits_for_locks(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'deep' / 'er' / 'jobs.sqlite'}")
    with engine.connect() as conn:
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(sa.text("PRAGMA busy_timeout")).scalar() == 30000
        assert conn.execute(sa.text("PRAGMA foreign_keys")).scalar() == 1
    assert (tmp_path / "deep" / "er" / "jobs.sqlite").exists()
