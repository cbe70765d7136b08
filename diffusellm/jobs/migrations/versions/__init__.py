"""Job-store schema revisions, oldest first (Alembic loads them by revision id, not by name)."""
