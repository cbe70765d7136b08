"""Phase 4, parameter operations: the call sites of a function and which argument binds where."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import libcst as cst
import libcst.matchers as m

from diffusellm.pipeline.operations.refs.scan import Problem
from diffusellm.pipeline.operations.refs.uses import ReferenceSet


@dataclass(frozen=True)
class Shape:
    """The parts of a signature that decide how arguments bind."""

    positional: tuple[str, ...]  # positional parameters, `self`/`cls` included
    kwonly: frozenset[str]
    star: bool
    starkw: bool
    receiver: Literal["none", "self", "cls"]  # implicit first parameter of a method


@dataclass(frozen=True)
class CallSite:
    """A call of the function: the Call node in the resolver's tree for `rel`."""

    rel: str
    line: int
    call: cst.Call
    bound: bool  # the first positional parameter is supplied by the call (obj.method(...))


def shape_of(function: cst.FunctionDef, receiver: Literal["none", "self", "cls"]) -> Shape:
    """The signature shape of a function definition."""
    params = function.params
    return Shape(
        positional=tuple(p.name.value for p in [*params.posonly_params, *params.params]),
        kwonly=frozenset(p.name.value for p in params.kwonly_params),
        star=isinstance(params.star_arg, cst.Param),
        starkw=params.star_kwarg is not None,
        receiver=receiver,
    )


def _callee_name(call: cst.Call) -> cst.Name | None:
    if isinstance(call.func, cst.Name):
        return call.func
    if isinstance(call.func, cst.Attribute):
        return call.func.attr
    return None


def _is_bound(found: ReferenceSet, rel: str, call: cst.Call, receiver: str) -> bool:
    """Whether `self`/`cls` comes from the call (not so for `Class.method(obj, ...)`)."""
    if receiver == "cls":
        return True
    if receiver == "none" or not isinstance(call.func, cst.Attribute):
        return False
    info = found.resolver.info(rel)
    owners = found.query.owners
    through_class = any(found.resolver.canonical(q) in owners
                        for q in info.qualified(call.func.value))
    return not through_class


def find_calls(found: ReferenceSet, receiver: str) -> tuple[list[CallSite], list[Problem]]:
    """Every call of the target, and problems for uses that are not calls (callbacks, partial)."""
    calls: list[CallSite] = []
    problems: list[Problem] = []
    for rel, refs in found.by_file().items():
        places = {(r.line, r.column) for r in refs if r.kind in ("name", "attribute")}
        if not places:
            continue
        info = found.resolver.info(rel)
        seen: set[tuple[int, int]] = set()
        for call in m.findall(info.tree, m.Call()):
            assert isinstance(call, cst.Call)
            callee = _callee_name(call)
            pos = info.position(callee) if callee is not None else None
            if pos in places:
                assert pos is not None
                seen.add(pos)
                calls.append(CallSite(rel, pos[0], call, _is_bound(found, rel, call, receiver)))
        problems += [Problem(rel, line, f"{found.query.old} is used as a value here, so the calls "
                                        "made through it cannot be checked")
                     for line, _ in sorted(places - seen)]
    return calls, problems


def _passed(shape: Shape, bound: bool) -> tuple[str, ...]:
    """Positional parameters as the caller fills them."""
    return shape.positional[1:] if bound and shape.receiver != "none" else shape.positional


def removal_index(site: CallSite, shape: Shape, name: str) -> int | None | str:
    """Index of the argument passing `name`, None if not passed, or why that is unknown."""
    args = site.call.args
    for i, arg in enumerate(args):
        if arg.keyword is not None and arg.keyword.value == name:
            return i
    passed = _passed(shape, site.bound)
    if name in passed:
        wanted = passed.index(name)
        count = 0
        for i, arg in enumerate(args):
            if arg.keyword is not None or arg.star == "**":
                continue
            if arg.star == "*":
                return f"*{cst.Module([]).code_for_node(arg.value)} may pass {name}"
            if count == wanted:
                return i
            count += 1
    if any(arg.star == "**" for arg in args):
        return f"**kwargs unpacking may pass {name}"
    return None


def add_problems(sites: list[CallSite], shape: Shape, name: str, positional: bool) -> list[Problem]:
    """Calls whose arguments would bind differently once parameter `name` exists."""
    problems: list[Problem] = []
    for site in sites:
        args = site.call.args
        keywords = {a.keyword.value for a in args if a.keyword is not None}
        if shape.starkw and (name in keywords or any(a.star == "**" for a in args)):
            problems.append(Problem(site.rel, site.line, f"passes {name}= or **kwargs, which "
                                                         "the new parameter would take"))
        if positional and any(a.star == "*" for a in args):
            problems.append(Problem(site.rel, site.line, "passes *args, which could now fill the "
                                                         f"new positional parameter {name}"))
        extra = sum(1 for a in args if a.keyword is None and a.star == "")
        if positional and shape.star and extra > len(_passed(shape, site.bound)):
            problems.append(Problem(site.rel, site.line, "passes extra positional arguments, the "
                                                         f"first of which would now fill {name}"))
    return problems
