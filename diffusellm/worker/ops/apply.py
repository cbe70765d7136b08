"""Phase 4, deterministic side: apply a spec's operations in order to a repository, all or nothing."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from diffusellm.errors import OperationError
from diffusellm.worker.ops.base import Project
from diffusellm.worker.spec import (
    AddParameter,
    MoveSymbol,
    Operation,
    RemoveParameter,
    RenameSymbol,
)


def _handlers() -> dict[type[Any], Callable[[Project, Any], None]]:
    # Imported here so that loading the spec contract does not load LibCST codemods and jedi.
    from diffusellm.worker.ops.move import apply_move
    from diffusellm.worker.ops.params import apply_add_parameter, apply_remove_parameter
    from diffusellm.worker.ops.rename import apply_rename

    return {
        RenameSymbol: apply_rename,
        AddParameter: apply_add_parameter,
        RemoveParameter: apply_remove_parameter,
        MoveSymbol: apply_move,
    }


def apply_operations(root: Path, operations: Sequence[Operation]) -> dict[str, str | None]:
    """Run every operation on a virtual view of `root`; return path → new text, or raise and change nothing.

    Operations see the edits of the ones before them. Nothing is written to disk here.
    """
    project = Project.load(root)
    handlers = _handlers()
    for index, op in enumerate(operations):
        try:
            handlers[type(op)](project, op)
        except OperationError as exc:
            raise OperationError(
                f"operations[{index}] ({op.op} {op.target}): {exc.message}",
                hint=exc.hint or "nothing was changed",
            ) from None
    return project.changes()


def write_changes(root: Path, changes: dict[str, str | None]) -> list[str]:
    """Write computed changes into a work copy (never the user's checkout); returns the paths written."""
    written: list[str] = []
    for rel, text in sorted(changes.items()):
        path = root / rel
        if text is None:
            path.unlink(missing_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w", encoding="utf-8", newline="") as handle:
                handle.write(text)
        written.append(rel)
    return written
