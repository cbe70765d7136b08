"""Phase 4, move_symbol support: the new text of the module a definition leaves and of the one
it joins (a module or its `.pyi` stub alike)."""

from __future__ import annotations

import libcst as cst
from libcst.helpers import get_full_name_for_node

from diffusellm.errors import OperationError
from diffusellm.pipeline.operations.move.build import (
    Binding,
    Dest,
    add_typing_block,
    all_names,
    append_definition,
    bindings,
    check_binding,
    edit_all,
    prune_imports,
    remove_statement,
    start_module,
)
from diffusellm.pipeline.operations.move.deps import Needs, Source, is_type_checking_block
from diffusellm.pipeline.operations.move.imports import ImportSpec
from diffusellm.pipeline.operations.move.place import (
    Importer,
    add_imports,
    header_end,
    insert_lines,
)
from diffusellm.pipeline.operations.move.refs import MoveNames, rewrite_file
from diffusellm.pipeline.project import resolve_relative

NOTHING = "nothing was changed"


def prefers_relative(dest: Dest, src: Source) -> bool:
    """Whether the new imports should be relative: the first import of the repository's own
    code in the destination, else in the old module, says which the project writes."""
    for tree, module in ((dest.tree, dest.module), (src.tree, src.module)):
        for stmt in tree.body:
            smalls = stmt.body if isinstance(stmt, cst.SimpleStatementLine) else ()
            for small in smalls:
                if isinstance(small, cst.ImportFrom) and small.relative:
                    return True
                if isinstance(small, cst.ImportFrom | cst.Import) and _same_top(small, module):
                    return False
    return False


def _same_top(node: cst.Import | cst.ImportFrom, module: str) -> bool:
    top = module.split(".")[0]
    if isinstance(node, cst.Import):
        return any(a.evaluated_name.split(".")[0] == top for a in node.names)
    return resolve_relative(module, False, node).split(".")[0] == top


def build_old(src: Source, dest: Dest, needs: Needs, taken: set[str], reexport: bool,
              relative: bool) -> cst.Module:
    """The old module without the definition, importing it back where it is still used or
    must stay offered (`reexport`), and without the imports only the definition used."""
    tree, _ = remove_statement(src)
    exported = all_names(tree)
    if src.name in exported and not reexport:
        tree = edit_all(tree, src.name, add=False)
    if needs.remaining_lines or reexport:
        # a stub, or a module whose `__all__` does not list the name, re-exports what it
        # imports `as` the same name (PEP 484; ruff and pyright read it so too)
        plain = src.name in exported and not src.path.endswith(".pyi")
        alias = src.name if reexport and not plain else None
        back = ImportSpec(dest.module, src.name, alias, relative)
        tree = add_imports(tree, [back], Importer(src.module, src.is_package, dest.first_party))
    if not src.is_package:
        blocks = sum(1 for s in tree.body if is_type_checking_block(s))
        tree = prune_imports(tree, needs.used_imports, taken | exported)
        if sum(1 for s in tree.body if is_type_checking_block(s)) < blocks:
            tree = prune_imports(tree, {needs.guard_test.split(".")[0]}, taken | exported)
    names = MoveNames(src.module, dest.module, src.name)
    return rewrite_file(tree, names, dest.ctx(src.path, src.module, src.is_package, "old")).tree


def build_new(src: Source, dest: Dest, needs: Needs) -> cst.Module:
    """The destination (made from scratch when new) with the definition and what it needs."""
    _, stmts = remove_statement(src)
    tree = dest.tree if dest.exists else start_module(src, needs.futures)
    lazy = "annotations" in needs.futures
    if dest.exists and needs.typing and lazy and "annotations" not in _futures(tree):
        raise OperationError(
            f"cannot move {src.name} into {dest.module}: its annotations use names that "
            f"{src.module} imports only for type checking, and {dest.path} lacks "
            "`from __future__ import annotations`",
            hint=f"add that import to {dest.path} first; " + NOTHING)
    new = bindings(tree, dest.module, dest.is_package)
    new.pop(src.name, None)
    runtime = [s for s in needs.runtime if check_binding(new, s, dest)]
    typing = [s for s in needs.typing if check_binding(new, s, dest)]
    has_block = any(is_type_checking_block(s) for s in tree.body)
    guard = needs.guard
    if typing and not has_block and isinstance(guard, ImportSpec):
        runtime.extend([guard] if check_binding(new, guard, dest) else [])
    tree = add_imports(tree, runtime, Importer(dest.module, dest.is_package, dest.first_party))
    tree = add_typing_block(tree, typing, needs, dest)
    tree = _with_copies(tree, needs.copies, new, dest)
    tree = edit_all(append_definition(tree, stmts), src.name, add=True)
    names = MoveNames(src.module, dest.module, src.name)
    result = rewrite_file(tree, names, dest.ctx(dest.path, dest.module, dest.is_package, "new"))
    if result.refusals:
        raise OperationError(result.refusals[0], hint=f"fix that in {dest.path} first; "
                             + NOTHING)
    return result.tree


def _bare(stmt: cst.SimpleStatementLine | cst.BaseCompoundStatement) -> str:
    return cst.Module(body=[stmt.with_changes(leading_lines=[])]).code.strip()


def _with_copies(tree: cst.Module, copies: list[cst.SimpleStatementLine], new: dict[str, Binding],
                 dest: Dest) -> cst.Module:
    """The type variables the moved code uses, defined once more after the imports; one the
    module already defines the same way is reused, one it binds otherwise is refused."""
    have = {_bare(s) for s in tree.body}
    lines: list[cst.BaseStatement] = []
    for stmt in copies:
        if _bare(stmt) in have:
            continue
        taken = [n for n in _assigned(stmt) if n in new]
        if taken:
            raise OperationError(
                f"cannot move into {dest.module}: it already binds {taken[0]}, but the moved "
                f"code needs its own `{_bare(stmt)}`",
                hint=f"rename one of them first ({dest.path}); " + NOTHING)
        lines.append(stmt.with_changes(leading_lines=[]))
    return insert_lines(tree, header_end(tree), lines, blank_before=True) if lines else tree


def _assigned(stmt: cst.SimpleStatementLine) -> list[str]:
    return [t.target.value for small in stmt.body if isinstance(small, cst.Assign)
            for t in small.targets if isinstance(t.target, cst.Name)]


def _futures(tree: cst.Module) -> set[str]:
    return {a.evaluated_name for stmt in tree.body if isinstance(stmt, cst.SimpleStatementLine)
            for small in stmt.body if isinstance(small, cst.ImportFrom) and small.module is not None
            and get_full_name_for_node(small.module) == "__future__"
            and not isinstance(small.names, cst.ImportStar) for a in small.names}
