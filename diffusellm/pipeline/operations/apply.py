"""Phase 4, deterministic side: apply a spec's operations in order to a repository, all or nothing."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from diffusellm.errors import OperationError
from diffusellm.pipeline.paths import check_path, encode_source, remove_file, write_file
from diffusellm.pipeline.project import Project
from diffusellm.pipeline.spec import (
    AddFunction,
    AddParameter,
    AddTest,
    EditFunction,
    MoveSymbol,
    Operation,
    RemoveParameter,
    RenameSymbol,
)

if TYPE_CHECKING:
    from diffusellm.pipeline.operations.generative.functions import GenerativeContext


def _handlers(context: GenerativeContext | None) -> dict[type[Any], Callable[[Project, Any], None]]:
    # Imported here so that loading the spec contract does not load LibCST codemods and jedi.
    from diffusellm.pipeline.operations.generative.functions import (
        GenerativeContext,
        apply_add_function,
        apply_add_test,
        apply_edit_function,
    )
    from diffusellm.pipeline.operations.move.symbol import apply_move
    from diffusellm.pipeline.operations.parameters.change import apply_add_parameter, apply_remove_parameter
    from diffusellm.pipeline.operations.rename.symbol import apply_rename

    ctx = context if context is not None else GenerativeContext()
    return {
        RenameSymbol: apply_rename,
        AddParameter: apply_add_parameter,
        RemoveParameter: apply_remove_parameter,
        MoveSymbol: apply_move,
        EditFunction: apply_edit_function,
        AddFunction: lambda project, op: apply_add_function(project, op, ctx),
        AddTest: apply_add_test,
    }


def apply_operations(
    root: Path,
    operations: Sequence[Operation],
    *,
    context: GenerativeContext | None = None,
    python: str | None = None,
) -> dict[str, str | None]:
    """Run every operation on a virtual view of `root`; return path → new text, or raise and change nothing.

    Operations see the edits of the ones before them. Nothing is written to disk here.
    `context` gives generative operations the signature trie and collects their warnings.
    `python`: the repository's environment's interpreter, whose packages reference finding sees
    (never diffusellm's own); None: the standard library only.
    """
    project = Project.load(root, python=python)
    handlers = _handlers(context)
    for index, op in enumerate(operations):
        try:
            handlers[type(op)](project, op)
        except OperationError as exc:
            raise OperationError(
                f"operations[{index}] ({op.op} {op.target}): {exc.message}",
                hint=exc.hint or "nothing was changed",
            ) from None
    if context is not None:
        context.warnings.extend(project.skipped_warnings())
    return project.changes()


def write_changes(root: Path, changes: dict[str, str | None]) -> list[str]:
    """Write computed changes into a work copy (never the user's checkout); returns the paths written.

    Every path goes through the guard: nothing is written through a link, into .git/ or outside.
    """
    encoded = {rel: None if text is None else encode_source(rel, text) for rel, text in changes.items()}
    for rel in encoded:
        check_path(root, rel)
    for rel, data in sorted(encoded.items()):
        if data is None:
            remove_file(root, rel)
        else:
            write_file(root, rel, data)
    return sorted(encoded)
