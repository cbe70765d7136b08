"""Deterministic refactor operations (LibCST codemods) applied across a whole repository."""
