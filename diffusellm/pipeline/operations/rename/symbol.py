"""Phase 4, rename_symbol: rename a function, class, method or module-level name everywhere."""

from __future__ import annotations

import libcst as cst

from diffusellm.errors import OperationError
from diffusellm.pipeline.operations.refs.bindings import dotted
from diffusellm.pipeline.operations.refs.declared import refuse_declared
from diffusellm.pipeline.operations.refs.text import check_identifier, replace_at, text_at
from diffusellm.pipeline.operations.refs.uses import ReferenceSet, collect_references
from diffusellm.pipeline.operations.rename.clash import check_member_clash, check_module_clash
from diffusellm.pipeline.project import Project, Target, find_definitions, resolve_target
from diffusellm.pipeline.spec import RenameSymbol


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


def _check_names(old: str, new: str, qualname: str) -> None:
    check_identifier(new, "new name")
    if new == old:
        raise OperationError(f"{qualname} is already called {new!r}",
                             hint="give a different new_name; nothing was changed")
    if _is_dunder(old) or _is_dunder(new):
        raise OperationError(
            f"cannot rename {qualname} to {new!r}: special (dunder) names are looked up by Python "
            "itself, not by the code that a rename can follow",
            hint="rename ordinary names only; nothing was changed",
        )


def _check_not_fixture(project: Project, target: Target) -> None:
    """pytest requests fixtures by parameter name, which no reference search can follow."""
    defs, _ = find_definitions(project, target.module, list(target.names))
    for node in defs:
        decorators = node.decorators if isinstance(node, cst.FunctionDef) else ()
        for decorator in decorators:
            expr = decorator.decorator
            name = dotted(expr.func if isinstance(expr, cst.Call) else expr)
            if name.rpartition(".")[2] == "fixture":
                raise OperationError(
                    f"{target.qualname} is a pytest fixture; tests request it by parameter name",
                    hint="rename the fixture and the test parameters by hand, or use "
                         "@pytest.fixture(name=...); nothing was changed",
                )


def rename_edits(found: ReferenceSet, new: str) -> dict[str, str]:
    """New text of every file that names the target; uses through an alias stay as they are."""
    old = found.query.old
    project = found.resolver.project
    texts: dict[str, str] = {}
    for rel, refs in found.by_file().items():
        text = project.read(rel)
        places = [(r.line, r.column) for r in refs
                  if text_at(text, r.line, r.column, len(old)) == old]
        if not places:
            continue
        edited = replace_at(text, rel, places, old, new)
        try:
            cst.parse_module(edited)
        except cst.ParserSyntaxError as exc:
            raise OperationError(
                f"renaming would break {rel} (syntax error at line {exc.raw_line})",
                hint="this is a bug in the rename; nothing was changed",
            ) from None
        texts[rel] = edited
    return texts


def apply_rename(project: Project, op: RenameSymbol) -> None:
    """Rename `op.target` to `op.new_name` in definitions, uses, imports, strings and docs.

    Methods are renamed across their class hierarchy (the base definition and every override
    change together), so that dispatch keeps working. Refuses, writing nothing, when the new
    name would clash or a use cannot be resolved safely.
    """
    target = resolve_target(project, op.target, overloads=True)
    _check_names(target.names[-1], op.new_name, target.qualname)
    _check_not_fixture(project, target)
    refuse_declared(project, target, "rename")
    found = collect_references(project, target)
    if found.family is not None:
        check_member_clash(found, op.new_name)
    else:
        check_module_clash(found, op.new_name)
    for rel, text in rename_edits(found, op.new_name).items():
        project.write(rel, text)
