"""Alembic migrations of the job store, run by diffusellm.jobs.engine.upgrade_database."""
