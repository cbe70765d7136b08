"""Alembic environment for the job store: migrates the engine that upgrade_database hands in."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Engine

from diffusellm.errors import ConfigError
from diffusellm.jobs.schema import metadata

# Any constant works; every app instance takes the same one so only one migrates at a time.
_PG_MIGRATION_LOCK = 0x6A6F6273  # "jobs"


def run_migrations() -> None:
    """Upgrade in one transaction; on PostgreSQL under an advisory lock all instances share."""
    engine = context.config.attributes.get("engine")
    if not isinstance(engine, Engine):
        raise ConfigError(
            "the job-store migrations need an engine",
            hint="run them with diffusellm.jobs.engine.upgrade_database(url), not the alembic CLI",
        )
    with engine.connect() as connection:
        # transactional_ddl: SQLite runs DDL in a transaction too once the driver leaves BEGIN
        # to us (see jobs/engine.py), so a failed upgrade leaves the old schema intact.
        context.configure(connection=connection, target_metadata=metadata, transactional_ddl=True)
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
            context.run_migrations()


run_migrations()
