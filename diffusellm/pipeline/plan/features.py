"""Phase 4 ranking features: files a plan touches, callers it affects, and how its new names fit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from diffusellm.pipeline.locate.context import Localised
from diffusellm.pipeline.spec import (
    AddFunction,
    AddParameter,
    AddTest,
    EditFunction,
    Operation,
    RenameSymbol,
)
from diffusellm.pipeline.understand.graph import SymbolRow
from diffusellm.pipeline.understand.style.infer import conforms
from diffusellm.pipeline.understand.style.naming import DEFAULT_NAMING
from diffusellm.pipeline.understand.style.profile import IdentifierKind, StyleProfile

_NAME_KIND: dict[str, IdentifierKind] = {
    "function": "function",
    "method": "method",
    "class": "class",
    "constant": "constant",
    "variable": "variable",
    "module": "module",
}


class GraphView(Protocol):
    """The knowledge-graph queries ranking needs (`KnowledgeGraph` provides them)."""

    def definitions(self, name: str) -> list[SymbolRow]:
        """Definitions named `name`."""
        ...

    def callers(self, qualname: str) -> list[SymbolRow]:
        """Scopes whose code calls `qualname`."""
        ...


def _defined_in(graph: GraphView, qualname: str) -> str | None:
    rows = graph.definitions(qualname)
    return rows[0].path if rows else None


def _reach(op: Operation, graph: GraphView) -> tuple[set[str], int]:
    """Files an operation rewrites and the number of callers it affects."""
    if isinstance(op, AddTest):
        return {op.path}, 0
    if isinstance(op, AddFunction):
        module_path = _defined_in(graph, op.target.rsplit(".", 1)[0])
        return ({module_path} if module_path else set[str]()), 0
    own = _defined_in(graph, op.target)
    files: set[str] = {own} if own else set()
    callers = graph.callers(op.target)
    rewrites_callers = not isinstance(op, EditFunction) or op.signature_may_change
    if rewrites_callers:
        files |= {c.path for c in callers}
    return files, len(callers)


def _new_names(op: Operation, loc: Localised, graph: GraphView) -> list[tuple[str, IdentifierKind]]:
    if isinstance(op, RenameSymbol):
        sym = loc.find(op.target)
        kind = sym.kind if sym else next((r.kind for r in graph.definitions(op.target)), "function")
        return [(op.new_name, _NAME_KIND.get(kind, "variable"))]
    if isinstance(op, AddParameter):
        return [(op.name, "parameter")]
    if isinstance(op, AddFunction):
        parent = op.target.rsplit(".", 1)[0]
        in_class = any(s.qualname == parent and s.kind == "class" for s in loc.symbols)
        return [(op.target.rsplit(".", 1)[-1], "method" if in_class else "function")]
    return []


def measure(
    ops: Sequence[Operation], graph: GraphView, loc: Localised, profile: StyleProfile
) -> tuple[int, int, float]:
    """(files touched, callers affected, share of new names that follow the convention)."""
    files: set[str] = set()
    impact = 0
    names: list[tuple[str, IdentifierKind]] = []
    for op in ops:
        touched, callers = _reach(op, graph)
        files |= touched
        impact += callers
        names += _new_names(op, loc, graph)
    fitting = sum(1 for name, kind in names if conforms(name, profile.naming.get(kind, DEFAULT_NAMING[kind])))
    return len(files), impact, round(fitting / len(names), 4) if names else 1.0
