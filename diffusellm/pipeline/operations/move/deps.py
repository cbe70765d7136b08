"""Phase 4, move_symbol support: what a moved definition needs from the module it leaves."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

import libcst as cst
from libcst.helpers import get_full_name_for_node
from libcst.metadata import (
    Assignment,
    ImportAssignment,
    MetadataWrapper,
    PositionProvider,
    Scope,
    ScopeProvider,
)

from diffusellm.errors import OperationError
from diffusellm.pipeline.operations.move.imports import ImportSpec, alias_specs, from_source
from diffusellm.pipeline.project import is_overload

Guard = ImportSpec | cst.SimpleStatementLine


@dataclass(frozen=True)
class Source:
    """The module a definition leaves: its name, path, tree and the moved statements' indices
    (one, or an overloaded function's signatures and its implementation)."""

    module: str
    path: str
    is_package: bool
    tree: cst.Module
    indices: tuple[int, ...]
    name: str

    def statements(self) -> list[cst.BaseStatement]:
        """The moved statements, in source order."""
        return [self.tree.body[i] for i in self.indices]


@dataclass
class Needs:
    """Imports the moved code needs in its new module, and what the old module keeps using."""

    runtime: list[ImportSpec] = field(default_factory=lambda: [])
    typing: list[ImportSpec] = field(default_factory=lambda: [])
    guard: Guard | None = None
    guard_test: str = "TYPE_CHECKING"
    futures: list[str] = field(default_factory=lambda: [])
    used_imports: set[str] = field(default_factory=lambda: set())
    from_old: list[str] = field(default_factory=lambda: [])
    copies: list[cst.SimpleStatementLine] = field(default_factory=lambda: [])
    """Type variable definitions the new module gets its own copy of (`T = TypeVar("T")`)."""
    remaining_lines: list[int] = field(default_factory=lambda: [])


class _Ids(cst.CSTVisitor):
    def __init__(self) -> None:
        self.ids: set[int] = set()

    def on_visit(self, node: cst.CSTNode) -> bool:
        self.ids.add(id(node))
        return True


def node_ids(node: cst.CSTNode) -> set[int]:
    """Identities of a node and all its descendants."""
    visitor = _Ids()
    node.visit(visitor)
    return visitor.ids


def is_type_checking_block(stmt: cst.CSTNode) -> bool:
    """`if TYPE_CHECKING:` or `if typing.TYPE_CHECKING:` at module level."""
    if not isinstance(stmt, cst.If):
        return False
    name = get_full_name_for_node(stmt.test)
    return name is not None and name.split(".")[-1] == "TYPE_CHECKING"


class _Analysis:
    """One pass of scope analysis over the old module."""

    def __init__(self, src: Source, new_module: str, prefer_relative: bool) -> None:
        self.src = src
        self.new_module = new_module
        self.prefer_relative = prefer_relative
        wrapper = MetadataWrapper(src.tree, unsafe_skip_copy=True)
        scopes = wrapper.resolve(ScopeProvider)
        self.positions = wrapper.resolve(PositionProvider)
        scope = scopes[src.tree]
        assert scope is not None
        self.scope: Scope = scope
        self.all_scopes = {s for s in scopes.values() if s is not None}
        self.top_of: dict[int, int] = {}
        for index, stmt in enumerate(src.tree.body):
            self.top_of.update(dict.fromkeys(node_ids(stmt), index))
        self.moved = {i for stmt in src.statements() for i in node_ids(stmt)}
        self.needs = Needs()

    def line_of(self, node: cst.CSTNode) -> int:
        return self.positions[node].start.line

    def run(self) -> Needs:
        self._refuse_globals()
        self._refuse_star_imports()
        for assignment in self.scope.assignments[self.src.name]:
            outside = [r for r in assignment.references if id(r.node) not in self.moved]
            self.needs.remaining_lines.extend(self.line_of(r.node) for r in outside)
        deps = self._deps(self.moved)
        copied: dict[str, int] = {}
        while new := {n: i for n in deps - copied.keys() if (i := self._type_variable(n)) >= 0}:
            copied.update(new)
            deps |= self._deps({n for i in new.values() for n in node_ids(self.src.tree.body[i])})
        self.needs.copies = [s for i in sorted(set(copied.values()))
                             if isinstance(s := self.src.tree.body[i], cst.SimpleStatementLine)]
        for name in sorted(deps - copied.keys()):
            self._classify(name)
        self._futures()
        if self.needs.typing:
            self._guard()
        return self.needs

    def _deps(self, ids: set[int]) -> set[str]:
        """Module-level names used inside the nodes `ids`, the moved name aside."""
        return {a.name for a in self.scope.assignments if a.name != self.src.name
                and any(id(r.node) in ids for r in a.references)}

    def _type_variable(self, name: str) -> int:
        """Index of the one `name = TypeVar(...)` (or ParamSpec, TypeVarTuple) line defining
        `name`, which the new module gets a copy of; -1 for any other kind of name."""
        assignments = list(self.scope.assignments[name])
        if len(assignments) != 1 or not isinstance(assignments[0], Assignment) or isinstance(
                assignments[0], ImportAssignment):
            return -1
        index = self.top_of.get(id(assignments[0].node), -1)
        line = self.src.tree.body[index] if index >= 0 else None
        if not isinstance(line, cst.SimpleStatementLine) or len(line.body) != 1:
            return -1
        small = line.body[0]
        if not (isinstance(small, cst.Assign) and isinstance(small.value, cst.Call)
                and len(small.targets) == 1 and isinstance(small.targets[0].target, cst.Name)):
            return -1
        kind = (get_full_name_for_node(small.value.func) or "").rpartition(".")[2]
        return index if kind in ("TypeVar", "ParamSpec", "TypeVarTuple") else -1

    def _refuse_globals(self) -> None:
        for node in (g for stmt in self.src.statements() for g in _globals(stmt)):
            raise OperationError(
                f"cannot move {self.src.name}: it rebinds module globals of {self.src.module} "
                f"({self.src.path}:{self.line_of(node)})",
                hint="module state cannot follow the code to another module; refactor by hand")

    def _refuse_star_imports(self) -> None:
        stars = [n for _, n in _imports(self.src.tree)
                 if isinstance(n, cst.ImportFrom) and isinstance(n.names, cst.ImportStar)]
        if not stars:
            return
        for scope in self.all_scopes:
            for access in scope.accesses:
                if id(access.node) in self.moved and not access.referents:
                    raise OperationError(
                        f"cannot move {self.src.name}: it may use names from a star import "
                        f"({self.src.path}:{self.line_of(stars[0])})",
                        hint="replace the `import *` with explicit names first")

    def _classify(self, name: str) -> None:
        globals_ = {n.name.value for g in _globals(self.src.tree) for n in g.names}
        if name in globals_:
            raise OperationError(
                f"cannot move {self.src.name}: it reads {name}, which functions of "
                f"{self.src.module} rebind with `global`",
                hint=f"move {name} and its writers together by hand ({self.src.path})")
        assignments = [a for a in self.scope.assignments[name] if isinstance(a, Assignment)]
        if not assignments:
            return
        tops = [self.src.tree.body[self.top_of[id(a.node)]] for a in assignments]
        pairs = list(zip(assignments, tops, strict=True))
        typing_only = all(is_type_checking_block(t) and _in_body(a.node, t) for a, t in pairs)
        specs = {self._import_spec(a, t, typing_only) for a, t in pairs}
        spec = specs.pop() if len(specs) == 1 else None
        if spec is not None and spec.module == self.new_module and spec.name:
            self.needs.used_imports.add(name)
            return
        if spec is None:
            spec = ImportSpec(self.src.module, name, None, self.prefer_relative)
            if not typing_only:
                self.needs.from_old.append(name)
        else:
            self.needs.used_imports.add(name)
        (self.needs.typing if typing_only else self.needs.runtime).append(spec)

    def _import_spec(self, assignment: Assignment, top: cst.BaseStatement,
                     typing_only: bool) -> ImportSpec | None:
        node = assignment.node
        if not isinstance(assignment, ImportAssignment):
            return None
        if not (isinstance(top, cst.SimpleStatementLine) or typing_only):
            return None
        assert isinstance(node, cst.Import | cst.ImportFrom)
        for spec in alias_specs(node, self.src.module, self.src.is_package):
            if assignment.name in (spec.bound, spec.asname or spec.module):
                return spec
        return None

    def _futures(self) -> None:
        for _, node in _imports(self.src.tree):
            if (isinstance(node, cst.ImportFrom) and from_source(node) == "__future__"
                    and not isinstance(node.names, cst.ImportStar)):
                # the others (absolute_import, division, print_function, ...) are Python 3's
                # behaviour already: copied into a new module they are only lint (ruff UP010)
                self.needs.futures.extend(a.evaluated_name for a in node.names
                                          if a.evaluated_name == "annotations")

    def _guard(self) -> None:
        blocks = [s for s in self.src.tree.body if is_type_checking_block(s)]
        test = blocks[0].test if blocks and isinstance(blocks[0], cst.If) else None
        name = (get_full_name_for_node(test) if test is not None else None) or "TYPE_CHECKING"
        self.needs.guard_test = name
        root = name.split(".")[0]
        for assignment in self.scope.assignments[root]:
            if not isinstance(assignment, Assignment):
                continue
            top = self.src.tree.body[self.top_of[id(assignment.node)]]
            spec = self._import_spec(assignment, top, False)
            if spec is not None:
                self.needs.guard = spec
            elif isinstance(top, cst.SimpleStatementLine) and len(top.body) == 1:
                self.needs.guard = top.with_changes(leading_lines=[])
            return
        self.needs.guard = ImportSpec("typing", "TYPE_CHECKING")
        self.needs.guard_test = "TYPE_CHECKING"


def _in_body(node: cst.CSTNode, block: cst.BaseStatement) -> bool:
    return isinstance(block, cst.If) and id(node) in node_ids(block.body)


class _Globals(cst.CSTVisitor):
    def __init__(self) -> None:
        self.found: list[cst.Global] = []

    def visit_Global(self, node: cst.Global) -> None:  # noqa: N802
        self.found.append(node)


def _globals(root: cst.CSTNode) -> list[cst.Global]:
    finder = _Globals()
    root.visit(finder)
    return finder.found


def _imports(tree: cst.Module) -> list[tuple[int, cst.Import | cst.ImportFrom]]:
    found: list[tuple[int, cst.Import | cst.ImportFrom]] = []
    for index, stmt in enumerate(tree.body):
        lines: Collection[cst.BaseStatement] = [stmt]
        if is_type_checking_block(stmt) and isinstance(stmt, cst.If):
            lines = [s for s in stmt.body.body if isinstance(s, cst.BaseStatement)]
        for line in lines:
            if isinstance(line, cst.SimpleStatementLine):
                found.extend((index, s) for s in line.body
                             if isinstance(s, cst.Import | cst.ImportFrom))
    return found


def analyse(src: Source, new_module: str, prefer_relative: bool) -> Needs:
    """Dependencies of the moved statement, the futures to copy and the old module's other uses."""
    return _Analysis(src, new_module, prefer_relative).run()


def definition_indices(tree: cst.Module, name: str, path: str) -> tuple[int, ...]:
    """Where `name` is defined at module level: one def or class, or an overloaded function's
    `@overload` signatures with (outside stubs) its implementation; otherwise refuse."""
    hits = [i for i, s in enumerate(tree.body)
            if isinstance(s, cst.FunctionDef | cst.ClassDef) and s.name.value == name]
    if not hits:
        raise OperationError(f"cannot move {name}: it is defined conditionally (inside an if "
                             f"block) in {path}", hint="move conditional definitions by hand")
    if all(is_overload(tree.body[i]) for i in hits[:-1]):
        return tuple(hits)
    raise OperationError(f"cannot move {name}: {path} defines it {len(hits)} times",
                         hint="keep one definition (or @overload signatures and one "
                              "implementation) and move that")
