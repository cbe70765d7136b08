"""Phase 4, move_symbol support: build the new text of the module left and the module joined."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import libcst as cst
from libcst.metadata import ImportAssignment, MetadataWrapper, ScopeProvider

from diffusellm.errors import OperationError
from diffusellm.pipeline.operations.move.deps import Needs, Source, is_type_checking_block
from diffusellm.pipeline.operations.move.edit import Edits, apply_edits
from diffusellm.pipeline.operations.move.imports import (
    ImportSpec,
    alias_specs,
    insert_sorted,
    remove_item,
    render,
)
from diffusellm.pipeline.operations.move.place import (
    Importer,
    add_imports,
    blank_lines,
    header_end,
    insert_lines,
    is_docstring,
    with_blank_lines,
)
from diffusellm.pipeline.operations.move.refs import FileCtx, Role

Binding = ImportSpec | None


@dataclass(frozen=True)
class Dest:
    """The module a definition joins: name, path, package or not, tree, and files to create."""

    module: str
    path: str
    is_package: bool
    tree: cst.Module
    exists: bool
    new_inits: tuple[str, ...] = ()
    first_party: frozenset[str] = frozenset()

    def ctx(self, rel: str, module: str, is_package: bool, role: Role) -> FileCtx:
        """Context for rewriting one file of this repository."""
        return FileCtx(rel, module, is_package, role, self.first_party)


def bindings(tree: cst.Module, module: str, is_package: bool) -> dict[str, Binding]:
    """Names bound at module level: an ImportSpec for imports, None for local definitions."""
    found: dict[str, Binding] = {}
    for stmt in _module_level(tree.body):
        if isinstance(stmt, cst.FunctionDef | cst.ClassDef):
            found.setdefault(stmt.name.value, None)
            continue
        for small in stmt.body:
            if isinstance(small, cst.Import | cst.ImportFrom):
                for spec in alias_specs(small, module, is_package):
                    found.setdefault(spec.bound, spec)
            for target in _assign_targets(small):
                found.setdefault(target, None)
    return found


def _module_level(body: Sequence[cst.BaseStatement]
                  ) -> list[cst.SimpleStatementLine | cst.FunctionDef | cst.ClassDef]:
    found: list[cst.SimpleStatementLine | cst.FunctionDef | cst.ClassDef] = []
    for stmt in body:
        if isinstance(stmt, cst.SimpleStatementLine | cst.FunctionDef | cst.ClassDef):
            found.append(stmt)
        elif isinstance(stmt, cst.If | cst.Try):
            found.extend(_module_level([s for s in stmt.body.body
                                        if isinstance(s, cst.BaseStatement)]))
    return found


def _assign_targets(small: cst.BaseSmallStatement) -> list[str]:
    if isinstance(small, cst.Assign):
        return [t.target.value for t in small.targets if isinstance(t.target, cst.Name)]
    if isinstance(small, cst.AnnAssign | cst.AugAssign) and isinstance(small.target, cst.Name):
        return [small.target.value]
    return []


def split_leading(lines: Sequence[cst.EmptyLine]
                  ) -> tuple[list[cst.EmptyLine], list[cst.EmptyLine]]:
    """Comment lines that stay behind (separated by a blank line) and those attached to the def."""
    blanks = [i for i, line in enumerate(lines) if line.comment is None]
    cut = blanks[-1] + 1 if blanks else 0
    staying = list(lines[:cut])
    while staying and staying[-1].comment is None:
        staying.pop()
    return staying, list(lines[cut:])


def remove_statement(src: Source) -> tuple[cst.Module, list[cst.FunctionDef | cst.ClassDef]]:
    """The old module without the moved statements, and the statements (the first with its
    attached comments)."""
    first = src.indices[0]
    moved = [s for s in src.statements() if isinstance(s, cst.FunctionDef | cst.ClassDef)]
    assert len(moved) == len(src.indices)
    body = [s for i, s in enumerate(src.tree.body) if i not in src.indices]
    staying, attached = split_leading(moved[0].leading_lines)
    tree = src.tree
    if first < len(body):  # what follows keeps the separation the moved code had
        nxt = with_blank_lines(body[first], blank_lines(moved[0]))
        body[first] = nxt.with_changes(leading_lines=[*staying, *nxt.leading_lines])
    elif staying:
        tree = tree.with_changes(footer=[*staying, *tree.footer])
    moved[0] = moved[0].with_changes(leading_lines=attached)
    return tree.with_changes(body=body), moved


def dunder_all(tree: cst.Module) -> tuple[int, cst.List | cst.Tuple] | None:
    """Index and literal of a module-level `__all__ = [...]` (or tuple)."""
    for index, stmt in enumerate(tree.body):
        if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1:
            small = stmt.body[0]
            if (isinstance(small, cst.Assign) and _assign_targets(small) == ["__all__"]
                    and isinstance(small.value, cst.List | cst.Tuple)):
                return index, small.value
    return None


def all_names(tree: cst.Module) -> set[str]:
    """The string entries of `__all__`."""
    found = dunder_all(tree)
    if found is None:
        return set()
    return {str(e.value.evaluated_value) for e in found[1].elements
            if isinstance(e.value, cst.SimpleString)}


def edit_all(tree: cst.Module, name: str, *, add: bool) -> cst.Module:
    """Add `name` to `__all__` (sorted if it was) or remove it; no-op without an `__all__`."""
    found = dunder_all(tree)
    if found is None:
        return tree
    index, literal = found
    elements = [e for e in literal.elements if isinstance(e, cst.Element)]
    keys = [str(e.value.evaluated_value) if isinstance(e.value, cst.SimpleString) else ""
            for e in elements]
    if add and name not in keys:
        quote = next((e.value.quote for e in elements
                      if isinstance(e.value, cst.SimpleString)), '"')
        new = cst.Element(cst.SimpleString(f"{quote}{name}{quote}"))
        elements = insert_sorted(elements, new, lambda e: str(getattr(e.value, "value", ""))[1:-1])
    elif not add and name in keys:
        elements = remove_item(elements, keys.index(name))
    line = tree.body[index]
    assert isinstance(line, cst.SimpleStatementLine)
    small = line.body[0]
    assert isinstance(small, cst.Assign)
    new_line = line.with_changes(body=[small.with_changes(value=literal.with_changes(
        elements=elements))])
    return tree.with_changes(body=[*tree.body[:index], new_line, *tree.body[index + 1:]])


def prune_imports(tree: cst.Module, candidates: set[str], keep: set[str]) -> cst.Module:
    """Remove imports of `candidates` that nothing in the module uses any more."""
    wrapper = MetadataWrapper(tree, unsafe_skip_copy=True)
    scope = wrapper.resolve(ScopeProvider)[tree]
    assert scope is not None
    edits = Edits()
    for name in sorted(candidates - keep):
        related = [*scope.assignments[name], *scope.assignments[name.split(".")[0]]]
        imports = [a for a in related if isinstance(a, ImportAssignment)]
        if not imports or any(a.references for a in related):
            continue
        for assignment in imports:
            node = assignment.node
            assert isinstance(node, cst.Import | cst.ImportFrom)
            if isinstance(node.names, cst.ImportStar):
                continue
            edits.remove.update(id(a) for a in node.names if assignment.as_name is a.name
                                or (a.asname is not None and assignment.as_name is a.asname.name))
    return apply_edits(tree, edits)


def check_binding(new: dict[str, Binding], spec: ImportSpec, dest: Dest) -> bool:
    """Whether `spec` must be added to the new module; refuse when its name means something else."""
    if spec.bound not in new:
        return True
    have = new[spec.bound]
    if have is not None and have.same_binding(spec):
        return False
    if have is not None and have.name is None and spec.name is None:
        return True
    what = "a local definition" if have is None else render(have, dest.module, dest.is_package)
    raise OperationError(
        f"cannot move into {dest.module}: it already binds {spec.bound} ({what}), but the moved "
        f"code needs {render(spec, dest.module, dest.is_package)}",
        hint=f"rename one of them first ({dest.path}); nothing was changed")


def add_typing_block(tree: cst.Module, specs: Sequence[ImportSpec], needs: Needs,
                     dest: Dest) -> cst.Module:
    """Put typing-only imports in the module's `if TYPE_CHECKING:` block, made if needed.

    A guard bound by an import must already be imported; one bound by an assignment
    (`TYPE_CHECKING = False`) is copied just above the new block.
    """
    if not specs:
        return tree
    importer = Importer(dest.module, dest.is_package, dest.first_party)
    for index, stmt in enumerate(tree.body):
        if (is_type_checking_block(stmt) and isinstance(stmt, cst.If)
                and isinstance(stmt.body, cst.IndentedBlock)):
            lines = [s for s in stmt.body.body
                     if isinstance(s, cst.SimpleStatementLine | cst.BaseCompoundStatement)]
            inner = cst.Module(body=lines, default_indent=tree.default_indent)
            block = stmt.body.with_changes(body=add_imports(inner, specs, importer).body)
            body = list(tree.body)
            body[index] = stmt.with_changes(body=block)
            return tree.with_changes(body=body)
    new_lines: list[cst.BaseStatement] = []
    guard_name = needs.guard_test.split(".")[0]
    if isinstance(needs.guard, cst.SimpleStatementLine) and guard_name not in bindings(
            tree, dest.module, dest.is_package):
        new_lines.append(needs.guard)
    block = cst.parse_statement(f"if {needs.guard_test}:\n{tree.default_indent}pass\n")
    assert isinstance(block, cst.If)
    inner = add_imports(cst.Module(body=[], default_indent=tree.default_indent), specs, importer)
    new_lines.append(block.with_changes(body=block.body.with_changes(body=inner.body)))
    return insert_lines(tree, header_end(tree), new_lines, blank_before=True)


def start_module(src: Source, features: Sequence[str]) -> cst.Module:
    """A fresh module: a docstring if the old module has one, then the old module's futures."""
    body: list[cst.SimpleStatementLine | cst.BaseCompoundStatement] = []
    first = src.tree.body[0] if src.tree.body else None
    if first is not None and is_docstring(first):
        doc = f'"""Home of {src.name}, moved here from {src.module}."""\n'
        body.append(cst.parse_statement(doc))
    if features:
        line = cst.parse_statement(f"from __future__ import {', '.join(features)}\n")
        body.append(line.with_changes(leading_lines=[cst.EmptyLine()] if body else []))
    return cst.Module(body=body)


def append_definition(tree: cst.Module, stmts: Sequence[cst.FunctionDef | cst.ClassDef]
                      ) -> cst.Module:
    """Append the moved definitions, as many blank lines before the first as the module puts
    before its last definition (two when it has none; none in an empty module)."""
    defs = [s for s in tree.body if isinstance(s, cst.FunctionDef | cst.ClassDef)]
    count = blank_lines(defs[-1]) if defs else 2
    blanks = [cst.EmptyLine()] * count if tree.body else []
    first = stmts[0].with_changes(leading_lines=[*blanks, *stmts[0].leading_lines])
    return tree.with_changes(body=[*tree.body, first, *stmts[1:]])
