"""Phase 4, move_symbol support: find and rewrite one file's references to the moved symbol."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

import libcst as cst
from libcst.helpers import get_full_name_for_node
from libcst.metadata import CodeRange, FunctionScope, MetadataWrapper, PositionProvider, ScopeProvider

from diffusellm.pipeline.operations.move.edit import Edits, apply_edits
from diffusellm.pipeline.operations.move.imports import ImportSpec, package_parts, statement
from diffusellm.pipeline.operations.move.place import Importer, add_imports
from diffusellm.pipeline.project import resolve_relative

Role = Literal["importer", "old", "new"]
_IMPORTERS = frozenset({"importlib.import_module", "builtins.__import__"})


@dataclass(frozen=True)
class MoveNames:
    """The moved symbol's name and the modules it leaves and joins."""

    old: str
    new: str
    name: str

    @property
    def old_path(self) -> str:
        return f"{self.old}.{self.name}"

    @property
    def new_path(self) -> str:
        return f"{self.new}.{self.name}"


@dataclass(frozen=True)
class FileCtx:
    """Where a file sits: path, module name, package or not, and its role in the move."""

    rel: str
    module: str
    is_package: bool
    role: Role
    first_party: frozenset[str] = frozenset()

    @property
    def importer(self) -> Importer:
        return Importer(self.module, self.is_package, self.first_party)


@dataclass
class Scan:
    """What one file does with the old module and the moved name."""

    splits: dict[int, int] = field(default_factory=lambda: {})
    import_nodes: dict[int, cst.ImportFrom] = field(default_factory=lambda: {})
    attrs: list[cst.Attribute] = field(default_factory=lambda: [])
    local_imports: dict[int, cst.Import] = field(default_factory=lambda: {})
    """Attribute uses (by id) whose base name a function binds with its own `import pkg.sub`:
    the new module's import belongs beside that one, where the name is bound."""
    old_objs: list[cst.CSTNode] = field(default_factory=lambda: [])
    old_bindings: list[tuple[cst.ImportAlias, str]] = field(default_factory=lambda: [])
    strings: dict[int, cst.SimpleString] = field(default_factory=lambda: {})
    star: cst.ImportFrom | None = None
    bare: bool = False
    taken: set[str] = field(default_factory=lambda: set())
    refusals: list[str] = field(default_factory=lambda: [])
    dynamic_import: int | None = None
    used_names: set[str] = field(default_factory=lambda: set())
    new_bindings: list[str] = field(default_factory=lambda: [])
    uses_relative: bool = False


class _Scanner(cst.CSTVisitor):
    METADATA_DEPENDENCIES = (ScopeProvider, PositionProvider)

    def __init__(self, names: MoveNames, ctx: FileCtx, *, scoped: bool) -> None:
        super().__init__()
        self.names = names
        self.ctx = ctx
        self.scoped = scoped
        self.scan = Scan()
        self._attr_names: set[int] = set()
        self._old_aliases = {names.old} if "." not in names.old else set[str]()
        self._old_last = names.old.rpartition(".")[2]

    def know_aliases(self, aliases: set[str]) -> None:
        """The old module's local names, found before the scan so that earlier uses count."""
        self._old_aliases |= aliases

    def _qnames(self, node: cst.CSTNode) -> set[str]:
        """Absolute qualified names of a Name or Attribute (asked only where it matters)."""
        scope = self.get_metadata(ScopeProvider, node, None) if self.scoped else None
        if scope is None:
            return set()
        return {self._absolute(q.name) for q in scope.get_qualified_names_for(node)}

    def _local_import(self, node: cst.Attribute) -> cst.Import | None:
        """The function-level `import` statement that binds the attribute's leftmost name, if any."""
        base: cst.BaseExpression = node
        while isinstance(base, cst.Attribute):
            base = base.value
        scope = self.get_metadata(ScopeProvider, base, None) if isinstance(base, cst.Name) else None
        if scope is None or not isinstance(base, cst.Name):
            return None
        for assignment in scope[base.value]:
            bound = getattr(assignment, "node", None)
            if isinstance(bound, cst.Import) and isinstance(assignment.scope, FunctionScope):
                return bound
        return None

    def _absolute(self, name: str) -> str:
        bare = name.lstrip(".")
        dots = len(name) - len(bare)
        if not dots:
            return name
        base = package_parts(self.ctx.module, self.ctx.is_package)
        base = base[: len(base) - (dots - 1)]
        return ".".join([*base, bare] if bare else base)

    def _line(self, node: cst.CSTNode) -> int:
        position = self.get_metadata(PositionProvider, node, None)
        assert isinstance(position, CodeRange)
        return position.start.line

    def visit_Import(self, node: cst.Import) -> bool:  # noqa: N802
        for alias in node.names:
            if alias.evaluated_name == self.names.old:
                self.scan.old_bindings.append((alias, ""))
                self._old_aliases.add(alias.evaluated_alias or "")
            if alias.evaluated_name == self.names.new and alias.evaluated_alias:
                self.scan.new_bindings.append(alias.evaluated_alias)
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:  # noqa: N802
        self.scan.uses_relative |= bool(node.relative)
        source = resolve_relative(self.ctx.module, self.ctx.is_package, node)
        if isinstance(node.names, cst.ImportStar):
            if source == self.names.old:
                self.scan.star = node
            return False
        for index, alias in enumerate(node.names):
            if source == self.names.old:
                self.scan.taken.add(alias.evaluated_name)
                if alias.evaluated_name == self.names.name:
                    self.scan.splits[id(node)] = index
                    self.scan.import_nodes[id(node)] = node
            if f"{source}.{alias.evaluated_name}" == self.names.old:
                self.scan.old_bindings.append((alias, source))
                self._old_aliases.add(alias.evaluated_alias or alias.evaluated_name)
            if f"{source}.{alias.evaluated_name}" == self.names.new:
                self.scan.new_bindings.append(alias.evaluated_alias or alias.evaluated_name)
        return False

    def visit_Attribute(self, node: cst.Attribute) -> None:  # noqa: N802
        self._attr_names.add(id(node.attr))
        value = get_full_name_for_node(node.value) or ""
        if not (node.attr.value == self.names.name or value.split(".")[0] in self._old_aliases
                or value.rpartition(".")[2] == self._old_last):
            return
        if not self.scoped:  # no attribute use of the name here: just note what is taken
            self.scan.taken.add(node.attr.value)
            return
        qnames = self._qnames(node)
        old = self.names.old
        if self.names.old_path in qnames:
            self.scan.attrs.append(node)
            local = self._local_import(node)
            if local is not None:
                self.scan.local_imports[id(node)] = local
        if old in qnames:
            self.scan.old_objs.append(node)
        self.scan.taken.update(q[len(old) + 1:].split(".")[0]
                               for q in qnames if q.startswith(old + "."))

    def visit_Name(self, node: cst.Name) -> None:  # noqa: N802
        if id(node) in self._attr_names:
            return
        self.scan.used_names.add(node.value)
        if node.value not in self._old_aliases and node.value != self.names.name:
            return
        qnames = self._qnames(node)
        if self.names.old in qnames:
            self.scan.old_objs.append(node)
        if node.value == self.names.name and not qnames:
            self.scan.bare = True

    def visit_SimpleString(self, node: cst.SimpleString) -> None:  # noqa: N802
        value = _string_value(node)
        old = self.names.old_path
        if value is not None and (value == old or value.startswith(old + ".")):
            text = self.names.new_path + value[len(old):]
            self.scan.strings[id(node)] = node.with_changes(
                value=f"{node.prefix}{node.quote}{text}{node.quote}")

    def visit_Call(self, node: cst.Call) -> None:  # noqa: N802
        strings = {_string_value(a.value) for a in node.args}
        if self.names.name in strings and any(
                self.names.old in self._qnames(a.value) for a in node.args):
            self.scan.refusals.append(
                f"{self.ctx.rel}:{self._line(node)}: dynamic access to "
                f"{self.names.old_path} by name")
        first = node.args[0].value if node.args else None
        if (first is not None and _string_value(first) == self.names.old
                and self._qnames(node.func) & _IMPORTERS):
            self.scan.dynamic_import = self._line(node)


def _string_value(node: cst.BaseExpression) -> str | None:
    if not isinstance(node, cst.SimpleString):
        return None
    try:
        value = node.evaluated_value
    except (SyntaxError, ValueError):
        return None
    return value if isinstance(value, str) and value == node.raw_value else None


class _Shape(cst.CSTVisitor):
    """Whether a file uses the name in ways only scope analysis can resolve."""

    def __init__(self, names: MoveNames, ctx: FileCtx) -> None:
        super().__init__()
        self.names = names
        self.ctx = ctx
        self.found = False
        self.aliases: set[str] = set()
        """Names the file binds the old module to, wherever the import stands: a use may come
        first in the text (a function body above a late import)."""

    def visit_Import(self, node: cst.Import) -> None:  # noqa: N802
        self.aliases.update(a.evaluated_alias or "" for a in node.names
                            if a.evaluated_name == self.names.old)

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:  # noqa: N802
        if isinstance(node.names, cst.ImportStar):
            return
        source = resolve_relative(self.ctx.module, self.ctx.is_package, node)
        self.aliases.update(a.evaluated_alias or a.evaluated_name for a in node.names
                            if f"{source}.{a.evaluated_name}" == self.names.old)

    def visit_Attribute(self, node: cst.Attribute) -> None:  # noqa: N802
        self.found |= node.attr.value == self.names.name

    def visit_Call(self, node: cst.Call) -> None:  # noqa: N802
        wanted = {self.names.name, self.names.old}
        self.found |= any(_string_value(a.value) in wanted for a in node.args)

    def visit_ImportStar(self, node: cst.ImportStar) -> None:  # noqa: N802
        self.found = True


def scan_file(tree: cst.Module, names: MoveNames, ctx: FileCtx) -> Scan:
    """Collect references to the old module and the moved name (LibCST keeps node identities).

    Scope analysis (slow in LibCST) runs only where attribute access, calls taking the
    name as a string, or star imports need it; imports and strings are read syntactically.
    """
    shape = _Shape(names, ctx)
    tree.visit(shape)
    scanner = _Scanner(names, ctx, scoped=shape.found)
    scanner.know_aliases(shape.aliases)
    if shape.found:
        MetadataWrapper(tree, unsafe_skip_copy=True).visit(scanner)
    else:
        tree.visit(scanner)
    scan = scanner.scan
    word = re.compile(rf"\b{re.escape(names.name)}\b")
    if scan.dynamic_import is not None and word.search(tree.code):
        scan.refusals.append(f"{ctx.rel}:{scan.dynamic_import}: imports {names.old} by name "
                             f"and may read {names.name} from it")
    return scan


class _Taken(cst.CSTVisitor):
    def __init__(self, names: MoveNames, ctx: FileCtx) -> None:
        super().__init__()
        self.names = names
        self.ctx = ctx
        self.taken: set[str] = set()

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:  # noqa: N802
        source = resolve_relative(self.ctx.module, self.ctx.is_package, node)
        if source == self.names.old and not isinstance(node.names, cst.ImportStar):
            self.taken.update(a.evaluated_name for a in node.names)

    def visit_Attribute(self, node: cst.Attribute) -> None:  # noqa: N802
        value = get_full_name_for_node(node.value) or ""
        if value.rpartition(".")[2] == self.names.old.rpartition(".")[2]:
            self.taken.add(node.attr.value)


def names_taken(tree: cst.Module, names: MoveNames, ctx: FileCtx) -> set[str]:
    """Names a file takes from the old module, found without scope analysis (over-approximates)."""
    visitor = _Taken(names, ctx)
    tree.visit(visitor)
    return visitor.taken


@dataclass
class FileRewrite:
    """A rewritten file: its tree, the names it takes from the old module, and any refusal."""

    tree: cst.Module
    changed: bool
    taken: set[str]
    refusals: list[str]


def rewrite_file(tree: cst.Module, names: MoveNames, ctx: FileCtx) -> FileRewrite:
    """Point one file's imports, attribute uses and mock strings at the new module."""
    scan = scan_file(tree, names, ctx)
    if scan.refusals:
        return FileRewrite(tree, False, scan.taken, scan.refusals)
    edits = Edits(exprs=dict(scan.strings.items()))
    specs: list[ImportSpec] = []
    refusals: list[str] = []
    if ctx.role != "old":
        _plan_splits(tree, scan, names, ctx, edits, specs, refusals)
        _plan_attrs(scan, names, ctx, edits, specs, refusals)
        if ctx.role == "importer" and scan.star is not None and scan.bare:
            specs.append(ImportSpec(names.new, names.name, None, bool(scan.star.relative)))
    if refusals:
        return FileRewrite(tree, False, scan.taken, refusals)
    new_tree = add_imports(apply_edits(tree, edits), specs, ctx.importer)
    return FileRewrite(new_tree, bool(edits) or bool(specs), scan.taken, [])


def _plan_splits(tree: cst.Module, scan: Scan, names: MoveNames, ctx: FileCtx, edits: Edits,
                 specs: list[ImportSpec], refusals: list[str]) -> None:
    top = {id(s) for line in tree.body if isinstance(line, cst.SimpleStatementLine)
           for s in line.body}
    for key, index in scan.splits.items():
        node = scan.import_nodes[key]
        assert not isinstance(node.names, cst.ImportStar)
        alias = node.names[index]
        spec = ImportSpec(names.new, names.name, alias.evaluated_alias, bool(node.relative))
        if ctx.role == "new":
            if spec.asname:
                refusals.append(f"{ctx.rel}: imports {names.name} as {spec.asname} from "
                                f"{names.old}; the move would leave {spec.asname} undefined")
            edits.remove.add(id(alias))
        elif key in top and (len(node.names) > 1 or not _has_comments(tree, node)):
            edits.remove.add(id(alias))
            specs.append(spec)
        elif len(node.names) == 1:
            parsed = statement(spec, ctx.module, ctx.is_package).body[0]
            assert isinstance(parsed, cst.ImportFrom)
            edits.inline[key] = node.with_changes(module=parsed.module, relative=parsed.relative)
        else:
            edits.remove.add(id(alias))
            edits.after[key] = statement(spec, ctx.module, ctx.is_package)


def _has_comments(tree: cst.Module, node: cst.ImportFrom) -> bool:
    line = next(s for s in tree.body if isinstance(s, cst.SimpleStatementLine)
                and any(x is node for x in s.body))
    return "#" in tree.code_for_node(line)


def _plan_attrs(scan: Scan, names: MoveNames, ctx: FileCtx, edits: Edits,
                specs: list[ImportSpec], refusals: list[str]) -> None:
    if not scan.attrs:
        return
    plain = ImportSpec(names.new)
    for attr in scan.attrs:
        if ctx.role == "new":
            edits.exprs[id(attr)] = cst.Name(names.name)
        elif get_full_name_for_node(attr.value) == names.old:
            edits.exprs[id(attr)] = attr.with_changes(value=cst.parse_expression(names.new))
            local = scan.local_imports.get(id(attr))
            if local is None:
                specs.append(plain)
            else:  # `def f(): import pkg.sub; pkg.old_name()`: import the new module there too,
                # before or after that line as isort would order the two
                line = statement(plain, ctx.module, ctx.is_package)
                first = local.names[0].evaluated_name.lower() if local.names else ""
                (edits.before if names.new.lower() < first else edits.after)[id(local)] = line
        else:
            spec, expr = _module_binding(scan, names, attr)
            if expr is None:
                refusals.append(f"{ctx.rel}: no free name to refer to {names.new} "
                                f"(both {names.new.rpartition('.')[2]} and {names.name} are taken)")
                return
            edits.exprs[id(attr)] = expr
            if spec is not None:
                specs.append(spec)
    _drop_old_bindings(scan, names, edits, specs)
    specs[:] = list(dict.fromkeys(specs))


def _module_binding(scan: Scan, names: MoveNames,
                    attr: cst.Attribute) -> tuple[ImportSpec | None, cst.BaseExpression | None]:
    parent, _, last = names.new.rpartition(".")
    if scan.new_bindings:
        return None, attr.with_changes(value=cst.Name(scan.new_bindings[0]))
    if not parent:
        return ImportSpec(names.new), attr.with_changes(value=cst.Name(last))
    if last not in scan.used_names or last == get_full_name_for_node(attr.value):
        spec = ImportSpec(parent, last, None, scan.uses_relative)
        return spec, attr.with_changes(value=cst.Name(last))
    if names.name not in scan.used_names:
        return ImportSpec(names.new, names.name, None, scan.uses_relative), cst.Name(names.name)
    return ImportSpec(names.new), None


def _drop_old_bindings(scan: Scan, names: MoveNames, edits: Edits,
                       specs: list[ImportSpec]) -> None:
    """Remove (or turn into the new module's import) bindings of the old module left unused."""
    rewritten = {id(a.value) for a in scan.attrs}
    left = [o for o in scan.old_objs if id(o) not in rewritten]
    for alias, source in scan.old_bindings:
        if source or alias.asname is not None:
            bound = alias.evaluated_alias or alias.evaluated_name
            used = any(isinstance(o, cst.Name) and o.value == bound for o in left)
        else:
            used = any(get_full_name_for_node(o) == names.old for o in left)
        if used:
            continue
        substitute = None
        for spec in specs:
            if not source and spec.name is None and alias.asname is None:
                substitute = alias.with_changes(name=cst.parse_expression(spec.module))
            elif source and spec.module == source and spec.name and not spec.asname:
                substitute = alias.with_changes(name=cst.Name(spec.name), asname=None)
            if substitute is not None:
                specs.remove(spec)
                break
        if substitute is None:
            edits.remove.add(id(alias))
        else:
            edits.replace_alias[id(alias)] = substitute
