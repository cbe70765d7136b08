"""Schema migrations shipped in the package: fresh installs, re-runs, concurrent starts, downgrades."""

from __future__ import annotations

import subprocess
import sys

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from diffusellm.jobs.engine import alembic_config, current_revision, make_engine, upgrade_database
from diffusellm.jobs.schema import metadata
from diffusellm.jobs.store import SqlJobStore
from tests.jobs.conftest import ROOT
from tests.jobs.support import new_job, run_in_threads


def _head() -> str:
    engine = make_engine("sqlite:////tmp/unused-never-opened.sqlite")
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    assert head is not None
    return head


def test_upgrade_creates_the_schema_the_code_expects(store_url: str) -> None:
    engine = make_engine(store_url)
    assert current_revision(engine) is None
    upgrade_database(store_url)
    assert current_revision(engine) == _head()
    with engine.connect() as conn:
        drift = compare_metadata(MigrationContext.configure(conn), metadata)
    assert drift == [], "jobs/schema.py and the migrations disagree: add a migration"


def test_upgrade_is_idempotent_and_keeps_data(store_url: str) -> None:
    store = SqlJobStore(store_url)
    job, _ = store.enqueue(new_job("a"))
    upgrade_database(store_url)
    upgrade_database(store.engine)
    assert store.get(job.id) == job


def test_app_instances_starting_together_migrate_once(store_url: str) -> None:
    code = "import sys; from diffusellm.jobs.engine import upgrade_database as u; u(sys.argv[1])"
    starts = [subprocess.Popen([sys.executable, "-c", code, store_url], cwd=ROOT,
                               stderr=subprocess.PIPE, text=True) for _ in range(4)]
    errors = [p.communicate(timeout=120)[1] for p in starts]
    assert [p.returncode for p in starts] == [0, 0, 0, 0], errors
    engine = make_engine(store_url)
    with engine.connect() as conn:
        versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    assert [v[0] for v in versions] == [_head()]


def test_downgrade_to_base_and_back(store_url: str) -> None:
    engine = make_engine(store_url)
    upgrade_database(engine)
    command.downgrade(alembic_config(engine), "base")
    assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade_database(engine)
    assert {"jobs", "job_events", "deliveries"} <= set(sa.inspect(engine).get_table_names())


def test_stores_opened_together_in_one_process(store_url: str) -> None:
    stores = run_in_threads(4, lambda _i: SqlJobStore(store_url))
    assert all(isinstance(s, SqlJobStore) for s in stores)
    assert current_revision(make_engine(store_url)) == _head()
