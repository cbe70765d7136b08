"""CLI rendering shared by the commands: the tables a person reads after a run."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def validation_table(checks: list[dict[str, Any]]) -> Table:
    """The validation table shown after a run."""
    table = Table(title="validation (only new failures count)")
    for column in ("check", "result", "new failures", "scope"):
        table.add_column(column)
    for check in checks:
        result = "skipped" if check.get("skipped_reason") else ("passed" if check["passed"] else "FAILED")
        table.add_row(check["name"], result, str(len(check["new_failures"])), check.get("scope", ""))
    return table
