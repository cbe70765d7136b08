"""Phase 4, move_symbol support: describe, render, insert, merge and remove import statements."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import libcst as cst
from libcst.helpers import get_full_name_for_node

from diffusellm.pipeline.project import resolve_relative

_Seq = TypeVar("_Seq", cst.ImportAlias, cst.Element)


@dataclass(frozen=True)
class ImportSpec:
    """One imported name: `import module [as asname]` or `from module import name [as asname]`."""

    module: str
    name: str | None = None
    asname: str | None = None
    relative: bool = False

    @property
    def bound(self) -> str:
        """The name this import binds in the importing module."""
        if self.asname:
            return self.asname
        return self.name if self.name else self.module.split(".")[0]

    def same_binding(self, other: ImportSpec) -> bool:
        """Whether both imports bind the same object under the same name."""
        return (self.module, self.name, self.bound) == (other.module, other.name, other.bound)


def package_parts(module: str, is_package: bool) -> list[str]:
    """The dotted parts of the package a module's relative imports start from."""
    parts = module.split(".") if module else []
    return parts if is_package else parts[:-1]


def relative_source(importer: str, is_package: bool, target: str) -> str | None:
    """`.b`, `..x.y` or `.` naming `target` from `importer`; None when no top package is shared."""
    pkg = package_parts(importer, is_package)
    parts = target.split(".")
    if not pkg or parts[0] != pkg[0]:
        return None
    common = 0
    while common < min(len(pkg), len(parts)) and pkg[common] == parts[common]:
        common += 1
    return "." * (len(pkg) - common + 1) + ".".join(parts[common:])


def render(spec: ImportSpec, importer: str, is_package: bool) -> str:
    """Source text of the import statement for `spec` inside module `importer`."""
    alias = f" as {spec.asname}" if spec.asname else ""
    if spec.name is None:
        return f"import {spec.module}{alias}"
    return f"from {source_text(spec, importer, is_package)} import {spec.name}{alias}"


def source_text(spec: ImportSpec, importer: str, is_package: bool) -> str:
    if spec.relative:
        return relative_source(importer, is_package, spec.module) or spec.module
    return spec.module


def statement(spec: ImportSpec, importer: str, is_package: bool) -> cst.SimpleStatementLine:
    """A fresh import statement line for `spec`."""
    parsed = cst.parse_statement(render(spec, importer, is_package) + "\n")
    assert isinstance(parsed, cst.SimpleStatementLine)
    return parsed


def from_source(node: cst.ImportFrom) -> str:
    """The `from` part of an ImportFrom as written: dots then dotted module."""
    name = get_full_name_for_node(node.module) if node.module else ""
    return "." * len(node.relative) + (name or "")


def alias_specs(node: cst.Import | cst.ImportFrom, module: str,
                is_package: bool) -> list[ImportSpec]:
    """One spec per imported name of an import statement (star imports give none)."""
    if isinstance(node, cst.Import):
        return [ImportSpec(a.evaluated_name, None, a.evaluated_alias) for a in node.names]
    if isinstance(node.names, cst.ImportStar):
        return []
    source = resolve_relative(module, is_package, node)
    return [ImportSpec(source, a.evaluated_name, a.evaluated_alias, bool(node.relative))
            for a in node.names]


def top_level_imports(tree: cst.Module) -> list[tuple[int, cst.Import | cst.ImportFrom]]:
    """Import small statements of the module body with their statement index."""
    found: list[tuple[int, cst.Import | cst.ImportFrom]] = []
    for index, stmt in enumerate(tree.body):
        if isinstance(stmt, cst.SimpleStatementLine):
            found.extend((index, s) for s in stmt.body
                         if isinstance(s, cst.Import | cst.ImportFrom))
    return found


def sort_key(name: str) -> tuple[int, str]:
    """Order of names inside one import, as ruff's isort sorts them by default."""
    bare = name.lstrip("_")
    if len(bare) > 1 and bare.isupper():
        return (0, name)
    return (1, name) if bare[:1].isupper() else (2, name)


def insert_sorted(items: list[_Seq], item: _Seq, key_of: Callable[[_Seq], str]) -> list[_Seq]:
    """Insert into a comma-separated sequence, keeping its order (if sorted) and commas."""
    keys = [sort_key(key_of(i)) for i in items]
    new_key = sort_key(key_of(item))
    position = len(items)
    if keys == sorted(keys):
        position = next((i for i, k in enumerate(keys) if k > new_key), len(items))
    return _recomma([*items[:position], item, *items[position:]], items)


def _recomma(items: list[_Seq], original: list[_Seq]) -> list[_Seq]:
    separator: cst.Comma | cst.MaybeSentinel = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    if len(original) >= 2 and isinstance(original[0].comma, cst.Comma):
        separator = original[0].comma
    last_comma = original[-1].comma if original else cst.MaybeSentinel.DEFAULT
    result: list[_Seq] = []
    for index, item in enumerate(items):
        if index == len(items) - 1:
            comma = last_comma
        elif isinstance(item.comma, cst.Comma) and item is not original[-1]:
            comma = item.comma
        else:
            comma = separator
        result.append(item.with_changes(comma=comma))
    return result


def remove_item(items: list[_Seq], index: int) -> list[_Seq]:
    """Remove one item from a comma-separated sequence, keeping a trailing comma style."""
    removed = items[index]
    rest = items[:index] + items[index + 1:]
    if rest and index == len(rest):
        rest[-1] = rest[-1].with_changes(comma=removed.comma)
    return rest
