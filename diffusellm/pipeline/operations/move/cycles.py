"""Phase 4, move_symbol support: the repository's import-time import graph, and new cycles in it.

A move adds imports: the moved code's needs in its new module, the old module importing it back,
importers pointing at the new place. Any of them can close a loop through modules the move never
touched (a package `__init__` that imports the destination, which would now import the package).
Python then runs a module whose names are not bound yet and the import fails. Only edges that
exist at import time count: imports inside functions and `if TYPE_CHECKING:` blocks do not.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import libcst as cst

from diffusellm.errors import OperationError
from diffusellm.pipeline.operations.move.deps import is_type_checking_block
from diffusellm.pipeline.project import Project, resolve_relative


def import_nodes(stmt: cst.CSTNode) -> list[cst.Import | cst.ImportFrom]:
    """Import statements that run when `stmt` runs (function bodies excluded)."""
    if isinstance(stmt, cst.Import | cst.ImportFrom):
        return [stmt]
    if isinstance(stmt, cst.FunctionDef):
        return []
    return [n for child in stmt.children for n in import_nodes(child)]


def import_time_nodes(tree: cst.Module) -> Iterator[cst.Import | cst.ImportFrom]:
    """Every import a module runs when it is imported."""
    for stmt in tree.body:
        if is_type_checking_block(stmt) or isinstance(stmt, cst.FunctionDef):
            continue
        yield from import_nodes(stmt)


_State = tuple[str, bool]
"""A module reached, and whether an import on the way took a name from a module."""


@dataclass
class ImportGraph:
    """Import-time edges between the repository's modules, with some modules' trees replaced.

    `trees` holds the modules as the move leaves them (name → (tree, is_package)); every other
    module is parsed from the repository when a search first reaches it.
    """

    project: Project
    trees: Mapping[str, tuple[cst.Module, bool]]
    _edges: dict[str, dict[str, bool]] = field(default_factory=lambda: {})

    def _known(self, module: str) -> bool:
        return module in self.trees or self.project.path_of(module) is not None

    def _owner(self, name: str) -> str | None:
        """The longest prefix of a dotted name that is one of the repository's modules."""
        parts = name.split(".")
        for cut in range(len(parts), 0, -1):
            candidate = ".".join(parts[:cut])
            if self._known(candidate):
                return candidate
        return None

    def _tree(self, module: str) -> tuple[cst.Module, bool] | None:
        if module in self.trees:
            return self.trees[module]
        rel = self.project.path_of(module)
        if rel is None:
            return None
        try:
            return self.project.parse(rel), rel.endswith("__init__.py")
        except OperationError:
            return None  # a file that does not parse imports nothing we can follow

    def bindings(self, module: str, nodes: Iterable[cst.Import | cst.ImportFrom],
                 is_package: bool) -> Iterator[tuple[str, str | None, bool]]:
        """Each name these imports of `module` bind: a key, the repository module it comes from
        (None: not the repository's), and whether that module must have run far enough to bind
        a name (`from pkg import name`); `import pkg.sub` and `from pkg import sub` only need
        the module object, which a half-run module already is."""
        for node in nodes:
            if isinstance(node, cst.Import):
                yield from ((f"import {a.evaluated_name}", self._owner(a.evaluated_name), False)
                            for a in node.names)
                continue
            source = resolve_relative(module, is_package, node)
            if isinstance(node.names, cst.ImportStar):
                yield f"from {source} import *", self._owner(source), True
                continue
            for alias in node.names:
                sub = f"{source}.{alias.evaluated_name}"
                if self._known(sub):
                    yield f"from {sub}", sub, False
                else:
                    yield f"from {sub}", self._owner(source), True

    def edges(self, module: str) -> dict[str, bool]:
        """Import-time edges out of `module`, as the move leaves it: target → needs names bound."""
        if module not in self._edges:
            got = self._tree(module)
            found: dict[str, bool] = {}
            for _, owner, needs in (self.bindings(module, import_time_nodes(got[0]), got[1])
                                    if got else ()):
                if owner and owner != module:
                    found[owner] = found.get(owner, False) or needs
            self._edges[module] = found
        return self._edges[module]

    def path(self, start: str, goal: str, named: bool) -> list[str] | None:
        """A shortest chain of import-time edges from `start` to `goal` that, with the first
        edge's kind `named`, takes a name from some module on the way (a loop of bare module
        imports runs fine: each finds the other half-run in sys.modules), or None."""
        previous: dict[_State, _State | None] = {(start, named): None}
        frontier: list[_State] = [(start, named)]
        while frontier:
            following: list[_State] = []
            for module, flag in frontier:
                for nxt, needs in sorted(self.edges(module).items()):
                    state = (nxt, flag or needs)
                    if state in previous:
                        continue
                    previous[state] = (module, flag)
                    if state == (goal, True):
                        return _chain(previous, state)
                    following.append(state)
            frontier = following
        return None


def _chain(previous: Mapping[_State, _State | None], goal: _State) -> list[str]:
    chain = [goal]
    while (before := previous[chain[-1]]) is not None:
        chain.append(before)
    return [module for module, _ in chain[::-1]]


def new_cycle(project: Project, after: Mapping[str, tuple[cst.Module, bool]],
              before: Mapping[str, cst.Module]) -> list[str] | None:
    """A loop of import-time imports that the changed modules' new imports close, or None.

    `after`: each changed module's tree as the move leaves it, and whether it is a package;
    `before`: the same modules' trees before the move (a module the move creates is absent).
    A binding already imported before is not the move's doing, even when a new one reaches the
    same module: `import pkg` needs nothing bound, `from pkg import name` does. A loop counts
    only when some import on it takes a name from a module (see `ImportGraph.path`).
    """
    graph = ImportGraph(project, after)
    for module, (tree, is_package) in sorted(after.items()):
        old: set[str] = ({key for key, _, _ in graph.bindings(module, import_time_nodes(before[module]),
                                                               is_package)}
                         if module in before else set())
        added: dict[str, bool] = {}
        for key, owner, needs in graph.bindings(module, import_time_nodes(tree), is_package):
            if key not in old and owner and owner != module:
                added[owner] = added.get(owner, False) or needs
        for target, needs in sorted(added.items()):
            back = graph.path(target, module, needs)
            if back is not None:
                return [module, *back]
    return None
