"""Phase 4, add_parameter and remove_parameter: change a signature and the calls depending on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import libcst as cst
import libcst.matchers as m
from libcst.metadata import Assignment, ScopeProvider

from diffusellm.errors import OperationError
from diffusellm.pipeline.operations.parameters.calls import (
    CallSite,
    add_problems,
    find_calls,
    removal_index,
    shape_of,
)
from diffusellm.pipeline.operations.parameters.docstrings import document_parameter, undocument_parameter
from diffusellm.pipeline.operations.parameters.edit import (
    add_param,
    flatten,
    new_param,
    remove_arg,
    without_param,
)
from diffusellm.pipeline.operations.refs.bindings import FileInfo, Resolver, dotted
from diffusellm.pipeline.operations.refs.scan import Problem
from diffusellm.pipeline.operations.refs.text import check_identifier
from diffusellm.pipeline.operations.refs.uses import collect_references, describe_problems
from diffusellm.pipeline.project import Project, Target, resolve_target
from diffusellm.pipeline.spec import AddParameter, RemoveParameter

Receiver = Literal["none", "self", "cls"]
_PROPERTY = frozenset({"property", "cached_property", "functools.cached_property",
                       "abc.abstractproperty"})
_OVERLOAD = frozenset({"overload", "typing.overload", "typing_extensions.overload"})
# Decorators known to keep the wrapped function's signature as callers see it.
_KEEPS_SIGNATURE = frozenset({
    "staticmethod", "classmethod", "abstractmethod", "abc.abstractmethod", "override",
    "typing.override", "typing_extensions.override", "final", "typing.final", "cache",
    "functools.cache", "lru_cache", "functools.lru_cache",
})


@dataclass(frozen=True)
class _Function:
    target: Target
    info: FileInfo
    node: cst.FunctionDef
    receiver: Receiver
    decorators: tuple[str, ...]


def _refuse(target: str, message: str, hint: str) -> OperationError:
    return OperationError(f"{target}: {message}", hint=f"{hint}; nothing was changed")


def _locate(body: cst.CSTNode, names: tuple[str, ...]) -> cst.FunctionDef | None:
    """The definition at the path `names` (Class, method) inside a module or class body."""
    statements: list[cst.CSTNode] = list(getattr(getattr(body, "body", None), "body", []) or
                                         getattr(body, "body", []))
    for stmt in statements:
        if isinstance(stmt, cst.If):
            found = _locate(stmt, names)
            if found is not None:
                return found
        if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)) and stmt.name.value == names[0]:
            if len(names) == 1:
                return stmt if isinstance(stmt, cst.FunctionDef) else None
            return _locate(stmt, names[1:]) if isinstance(stmt, cst.ClassDef) else None
    return None


def _decorator(decorator: cst.Decorator) -> str:
    expr = decorator.decorator
    return dotted(expr.func if isinstance(expr, cst.Call) else expr) or "<expression>"


def _receiver(target: Target, decorators: tuple[str, ...]) -> Receiver:
    if target.kind != "method" or "staticmethod" in decorators:
        return "none"
    return "cls" if "classmethod" in decorators else "self"


def _load(project: Project, qualname: str, resolver: Resolver) -> _Function:
    """Resolve the target to a function definition we can change, or refuse."""
    target = resolve_target(project, qualname)
    if target.kind not in ("function", "method"):
        raise _refuse(target.qualname, f"is a {target.kind}, not a function or method",
                      "target a def")
    info = resolver.info(target.path)
    node = _locate(info.tree, target.names)
    if node is None:
        raise _refuse(target.qualname, "definition not found", "check the target")
    decorators = tuple(_decorator(d) for d in node.decorators)
    for name in decorators:
        if name in _PROPERTY or name.endswith((".setter", ".getter", ".deleter")):
            raise _refuse(target.qualname, f"is a property (@{name}); its signature is fixed",
                          "turn it into a method first if it needs parameters")
        if name in _OVERLOAD:
            raise _refuse(target.qualname, "has @overload signatures",
                          "change the overloads and the implementation by hand")
    receiver = _receiver(target, decorators)
    if receiver != "none" and not [*node.params.posonly_params, *node.params.params]:
        raise _refuse(target.qualname, f"method has no {receiver} parameter",
                      "fix the method first")
    return _Function(target, info, node, receiver, decorators)


def _param_names(node: cst.FunctionDef) -> list[str]:
    return [e.name.value for _, e in flatten(node.params) if isinstance(e, cst.Param)]


class _NameUses(cst.CSTVisitor):
    """Lines where an identifier is used as a name (not as `x.name` or `f(name=...)`)."""

    def __init__(self, info: FileInfo, name: str) -> None:
        super().__init__()
        self.info, self.name, self.lines = info, name, list[int]()
        self._skip: set[int] = set()

    def visit_Attribute(self, node: cst.Attribute) -> None:  # noqa: N802
        self._skip.add(id(node.attr))

    def visit_Arg(self, node: cst.Arg) -> None:  # noqa: N802
        if node.keyword is not None:
            self._skip.add(id(node.keyword))

    def visit_Name(self, node: cst.Name) -> None:  # noqa: N802
        if node.value == self.name and id(node) not in self._skip:
            self.lines.append(self.info.position(node)[0])


def _write(project: Project, texts: dict[str, str]) -> None:
    for rel, text in texts.items():
        try:
            cst.parse_module(text)
        except cst.ParserSyntaxError as exc:
            raise OperationError(
                f"the edit would break {rel} (syntax error at line {exc.raw_line})",
                hint="this is a bug in the operation; nothing was changed",
            ) from None
    for rel, text in texts.items():
        project.write(rel, text)


def _new_param(op: AddParameter) -> cst.Param:
    try:
        return new_param(op.name, op.default, op.annotation)
    except cst.ParserSyntaxError:
        raise OperationError(f"annotation {op.annotation!r} is not a Python expression",
                             hint="give a type expression such as `int | None`") from None


def apply_add_parameter(project: Project, op: AddParameter) -> None:
    """Add `op.name` with a default: keyword-only (after `*`) or as the last positional one."""
    check_identifier(op.name, "parameter name")
    resolver = Resolver(project)
    fn = _load(project, op.target, resolver)
    qual = fn.target.qualname
    if op.name in _param_names(fn.node):
        raise _refuse(qual, f"already has a parameter {op.name!r}", "choose another name")
    uses = _NameUses(fn.info, op.name)
    fn.node.body.visit(uses)
    if uses.lines:
        raise _refuse(qual, f"the body already uses the name {op.name!r} (line {uses.lines[0]}); "
                            "a parameter would shadow it", "choose another name")
    param = _new_param(op)
    shape = shape_of(fn.node, fn.receiver)
    positional = op.kind == "positional_or_keyword"
    if shape.starkw or positional:
        found = collect_references(project, fn.target, resolver)
        sites, values = find_calls(found, fn.receiver)
        problems = add_problems(sites, shape, op.name, positional)
        if shape.starkw or (positional and shape.star):
            problems += values
        _refuse_problems(qual, problems, f"pass {op.name} explicitly at these calls, or use "
                                         "another name or kind")
    node = fn.node.with_changes(params=add_param(fn.node, param, op.kind))
    node = document_parameter(node, op.name, op.annotation, op.doc or f"Defaults to {op.default}.")
    tree = fn.info.tree.deep_replace(fn.node, node)
    assert isinstance(tree, cst.Module)
    _write(project, {fn.target.path: tree.code})


def _refuse_problems(qual: str, problems: list[Problem], hint: str) -> None:
    if problems:
        raise OperationError(describe_problems(qual, problems), hint=f"{hint}; nothing was changed")


def _check_removable(fn: _Function, name: str) -> None:
    """The parameter exists, is an ordinary one, is not the receiver and is unused in the body."""
    qual, params = fn.target.qualname, fn.node.params
    plain = [*params.posonly_params, *params.params, *params.kwonly_params]
    param = next((p for p in plain if p.name.value == name), None)
    if param is None:
        star = name in _param_names(fn.node)
        raise _refuse(qual, f"{'*' if star else 'no '}parameter {name!r}"
                            f"{' cannot be removed by this operation' if star else ''}",
                      "check the parameter name" if not star else "change *args/**kwargs by hand")
    if fn.receiver != "none" and plain[0] is param:
        raise _refuse(qual, f"{name!r} is the method's {fn.receiver} parameter",
                      "remove another parameter")
    unknown = [d for d in fn.decorators if d not in _KEEPS_SIGNATURE]
    if unknown:
        raise _refuse(qual, f"decorator @{unknown[0]} may depend on the signature",
                      "remove the parameter by hand, checking the decorator")
    scope = fn.info.wrapper.resolve(ScopeProvider).get(param)
    lines = sorted(fn.info.position(a.node)[0] for asg in (scope.assignments[name] if scope else ())
                   if isinstance(asg, Assignment) and asg.node is param for a in asg.references)
    if lines or m.findall(fn.node.body, m.Call(func=m.Name("locals") | m.Name("vars"), args=[])):
        where = f"line {lines[0]}" if lines else "locals()/vars()"
        raise _refuse(qual, f"parameter {name!r} is used in the body ({fn.info.rel}, {where})",
                      "stop using it in the body first")


class _RemoveArgs(cst.CSTTransformer):
    def __init__(self, calls: dict[cst.Call, int], function: cst.FunctionDef | None, name: str):
        super().__init__()
        self.calls, self.function, self.name = calls, function, name

    def leave_Call(  # noqa: N802
        self, original_node: cst.Call, updated_node: cst.Call
    ) -> cst.Call:
        index = self.calls.get(original_node)
        return updated_node if index is None else remove_arg(updated_node, index)

    def leave_FunctionDef(  # noqa: N802
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef:
        if original_node is self.function:
            return undocument_parameter(without_param(updated_node, self.name), self.name)
        return updated_node


def _removals(sites: list[CallSite], fn: _Function, name: str,
              problems: list[Problem]) -> dict[str, dict[cst.Call, int]]:
    """Argument to drop in each call, by file; calls that cannot be edited go to `problems`."""
    shape = shape_of(fn.node, fn.receiver)
    edits: dict[str, dict[cst.Call, int]] = {fn.target.path: {}}
    for site in sites:
        index = removal_index(site, shape, name)
        if isinstance(index, str):
            problems.append(Problem(site.rel, site.line, index))
        elif index is not None:
            edits.setdefault(site.rel, {})[site.call] = index
    return edits


def apply_remove_parameter(project: Project, op: RemoveParameter) -> None:
    """Remove the unused parameter `op.name` and drop its argument from every call site."""
    resolver = Resolver(project)
    fn = _load(project, op.target, resolver)
    _check_removable(fn, op.name)
    found = collect_references(project, fn.target, resolver)
    if found.family is not None and len(found.family.defining) > 1:
        others = ", ".join(sorted(c.qualname for c in found.family.defining))
        raise _refuse(fn.target.qualname, f"the method is defined in several related classes "
                                          f"({others})", "change the overrides together by hand")
    sites, problems = find_calls(found, fn.receiver)
    removals = _removals(sites, fn, op.name, problems)
    _refuse_problems(fn.target.qualname, problems, f"pass {op.name} explicitly and call the "
                                                   "function directly, or edit these by hand")
    texts: dict[str, str] = {}
    for rel, calls in removals.items():
        function = fn.node if rel == fn.target.path else None
        texts[rel] = resolver.info(rel).tree.visit(_RemoveArgs(calls, function, op.name)).code
    _write(project, texts)
