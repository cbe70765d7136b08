"""CLI rendering shared by the commands: the tables a person reads after a run."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def validation_table(checks: list[dict[str, Any]]) -> Table:
    """The validation table shown after a run."""
    table = Table(title="validation (only new failures count)")
    for column in ("check", "result", "tests run", "new failures", "scope"):
        table.add_column(column)
    for check in checks:
        table.add_row(
            check["name"], _result(check), str(check.get("tests_run", 0)),
            str(len(check["new_failures"])), check.get("scope", ""),
        )
    return table


def _result(check: dict[str, Any]) -> str:
    """passed / FAILED / NOT RUN or off, with the reason: never "passed" for a check that did not run."""
    state = check.get("state") or ("passed" if check.get("passed") else "failed")
    reason = check.get("skipped_reason") or ""
    if state == "not_run":
        return f"NOT RUN: {reason}"
    if state == "off":
        return f"off: {reason}"
    return "passed" if state == "passed" else "FAILED"
