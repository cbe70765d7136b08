"""Phase 4, move_symbol support: place new imports where isort would, or merge them into lines."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import libcst as cst

from diffusellm.pipeline.operations.move.imports import (
    ImportSpec,
    alias_specs,
    from_source,
    insert_sorted,
    render,
    sort_key,
    source_text,
    top_level_imports,
)

MERGE_LINE_LIMIT = 88
_STDLIB = frozenset(sys.stdlib_module_names)

_Stmt = TypeVar("_Stmt", bound=cst.BaseStatement)


@dataclass(frozen=True)
class Importer:
    """The module receiving imports, and the top-level names that are first-party in its repo."""

    module: str
    is_package: bool
    first_party: frozenset[str] = frozenset()


def _section(source: str, importer: Importer) -> int:
    """isort section: future, standard library, third party, first party, relative."""
    if source.startswith("."):
        return 4
    top = source.split(".")[0]
    if top == "__future__":
        return 0
    if top in importer.first_party or top == importer.module.split(".")[0]:
        return 3
    return 1 if top in _STDLIB else 2


def _line_key(line: cst.SimpleStatementLine, importer: Importer) -> tuple[int, int, int, str, str]:
    node = line.body[0]
    if isinstance(node, cst.Import):
        source = node.names[0].evaluated_name
        return (_section(source, importer), 0, 0, source.lower(), "")
    assert isinstance(node, cst.ImportFrom)
    source = from_source(node)
    dots = len(source) - len(source.lstrip("."))
    first = "" if isinstance(node.names, cst.ImportStar) else node.names[0].evaluated_name.lower()
    return (_section(source, importer), 1, -dots, source.lstrip(".").lower(), first)


def _block(tree: cst.Module) -> list[int]:
    """Indexes of the top-level import lines that come before the first def or class."""
    found: list[int] = []
    for index, stmt in enumerate(tree.body):
        if isinstance(stmt, cst.FunctionDef | cst.ClassDef):
            break
        if is_import_line(stmt):
            found.append(index)
    return found


def is_import_line(stmt: cst.CSTNode) -> bool:
    """A simple statement line made only of imports."""
    return isinstance(stmt, cst.SimpleStatementLine) and all(
        isinstance(s, cst.Import | cst.ImportFrom) for s in stmt.body)


def is_docstring(stmt: cst.CSTNode) -> bool:
    """A module's docstring statement."""
    return (isinstance(stmt, cst.SimpleStatementLine) and isinstance(stmt.body[0], cst.Expr)
            and isinstance(stmt.body[0].value, cst.SimpleString | cst.ConcatenatedString))


def header_end(tree: cst.Module) -> int:
    """Index just after the module's import block (or after its docstring)."""
    block = _block(tree)
    if block:
        return block[-1] + 1
    return 1 if tree.body and is_docstring(tree.body[0]) else 0


def blank_lines(stmt: cst.BaseStatement) -> int:
    """How many blank lines come before `stmt`'s first comment line (or before it)."""
    lines: list[cst.EmptyLine] = list(getattr(stmt, "leading_lines", ()))
    return next((i for i, line in enumerate(lines) if line.comment is not None), len(lines))


def with_blank_lines(stmt: _Stmt, count: int) -> _Stmt:
    """`stmt` with at least `count` blank lines before its first comment line."""
    lines: list[cst.EmptyLine] = list(getattr(stmt, "leading_lines", ()))
    blanks = blank_lines(stmt)
    if blanks >= count:
        return stmt
    return stmt.with_changes(leading_lines=[cst.EmptyLine()] * (count - blanks) + lines)


def insert_lines(tree: cst.Module, index: int, lines: Sequence[cst.BaseStatement],
                 *, blank_before: bool) -> cst.Module:
    """Insert statements at `index`; a new block gets a blank line before and after it."""
    if not lines:
        return tree
    body: list[cst.BaseStatement] = list(tree.body)
    new = list(lines)
    if blank_before and index > 0:
        new[0] = with_blank_lines(new[0], 1)
    if index < len(body):
        nxt = body[index]
        body[index] = with_blank_lines(nxt, 2 if isinstance(nxt, cst.FunctionDef | cst.ClassDef) else 1)
    return tree.with_changes(body=[*body[:index], *new, *body[index:]])


def _insert_import(tree: cst.Module, line: cst.SimpleStatementLine,
                   importer: Importer) -> cst.Module:
    key = _line_key(line, importer)
    rows = [(i, _line_key(_as_line(tree.body[i]), importer)) for i in _block(tree)]
    same = [(i, k) for i, k in rows if k[0] == key[0]]
    later = [i for i, k in same if k > key]
    if later:
        body = list(tree.body)
        first = body[later[0]]
        line = line.with_changes(leading_lines=first.leading_lines)
        body[later[0]] = first.with_changes(leading_lines=[])
        return tree.with_changes(body=[*body[:later[0]], line, *body[later[0]:]])
    if same:
        body = list(tree.body)
        return tree.with_changes(body=[*body[:same[-1][0] + 1], line, *body[same[-1][0] + 1:]])
    lower = [i for i, k in rows if k[0] < key[0]]
    if lower:
        index = lower[-1] + 1  # a new section after the earlier ones
    elif rows:
        index = rows[0][0]  # a new first section
    else:
        index = header_end(tree)
    return insert_lines(tree, index, [line], blank_before=True)


def _as_line(stmt: cst.BaseStatement) -> cst.SimpleStatementLine:
    assert isinstance(stmt, cst.SimpleStatementLine)
    return stmt


def grouped_statement(specs: Sequence[ImportSpec], importer: Importer,
                      indent: str) -> cst.SimpleStatementLine:
    """One import line for specs sharing a source; parenthesised when it would be too long."""
    first = render(specs[0], importer.module, importer.is_package)
    if specs[0].name is None:
        parsed = cst.parse_statement(first + "\n")
    else:
        source = source_text(specs[0], importer.module, importer.is_package)
        names = [s.name + (f" as {s.asname}" if s.asname else "") for s in specs if s.name]
        names.sort(key=sort_key)
        text = f"from {source} import {', '.join(names)}"
        if len(text) > MERGE_LINE_LIMIT:
            text = f"from {source} import (\n" + "".join(f"{indent}{n},\n" for n in names) + ")"
        parsed = cst.parse_statement(text + "\n")
    assert isinstance(parsed, cst.SimpleStatementLine)
    return parsed


def add_imports(tree: cst.Module, specs: Sequence[ImportSpec], importer: Importer) -> cst.Module:
    """Add the imports not yet there, merged into existing lines or placed in isort order."""
    present = [s for _, node in top_level_imports(tree)
               for s in alias_specs(node, importer.module, importer.is_package)]
    groups: dict[str, list[ImportSpec]] = {}
    for spec in dict.fromkeys(specs):
        if any(spec.same_binding(p) for p in present):
            continue
        merged = merge_import(tree, spec, importer)
        if merged is not None:
            tree = merged
            continue
        key = render(spec, importer.module, importer.is_package)
        if spec.name is not None:
            key = source_text(spec, importer.module, importer.is_package)
        groups.setdefault(key, []).append(spec)
    for group in groups.values():
        tree = _insert_import(tree, grouped_statement(group, importer, tree.default_indent),
                              importer)
    return tree


def merge_import(tree: cst.Module, spec: ImportSpec, importer: Importer) -> cst.Module | None:
    """Add `spec` to an existing top-level `from <same source> import ...`, else None."""
    if spec.name is None:
        return None
    source = source_text(spec, importer.module, importer.is_package)
    for index, node in top_level_imports(tree):
        line = tree.body[index]
        if (not isinstance(node, cst.ImportFrom) or isinstance(node.names, cst.ImportStar)
                or from_source(node) != source or not isinstance(line, cst.SimpleStatementLine)
                or len(line.body) != 1):
            continue
        if spec.asname or any(a.asname is not None for a in node.names):
            continue  # isort keeps `import x as y` members on lines of their own
        alias = cst.ImportAlias(
            name=cst.Name(spec.name),
            asname=cst.AsName(name=cst.Name(spec.asname)) if spec.asname else None)
        names = insert_sorted(list(node.names), alias, lambda a: a.evaluated_name)
        new_line = line.with_changes(body=[node.with_changes(names=names)])
        if node.lpar is None and len(tree.code_for_node(new_line).strip()) > MERGE_LINE_LIMIT:
            continue
        return tree.with_changes(body=[*tree.body[:index], new_line, *tree.body[index + 1:]])
    return None
