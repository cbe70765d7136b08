"""Phase 4, rename_symbol: refuse a new name that would collide with or be captured by another."""

from __future__ import annotations

from collections.abc import Iterable

import libcst as cst
import libcst.matchers as m
from libcst.metadata import Assignment, BuiltinScope, GlobalScope, Scope, ScopeProvider

from diffusellm.errors import OperationError
from diffusellm.pipeline.operations.refs.bindings import FileInfo
from diffusellm.pipeline.operations.refs.jedi import external_problems
from diffusellm.pipeline.operations.refs.text import text_at
from diffusellm.pipeline.operations.refs.uses import Reference, ReferenceSet


def _clash(found: ReferenceSet, new: str, where: str) -> OperationError:
    return OperationError(
        f"cannot rename {found.target.qualname} to {new!r}: {new!r} already exists {where}",
        hint=f"choose another name, or rename the existing {new} first; nothing was changed",
    )


def _scopes(info: FileInfo) -> dict[cst.CSTNode, Scope]:
    resolved = info.wrapper.resolve(ScopeProvider)
    return {node: scope for node, scope in resolved.items() if scope is not None}


def _global_use(info: FileInfo, scopes: dict[cst.CSTNode, Scope], new: str) -> int | None:
    """Line of a use of `new` that resolves at module level (or to a builtin), if any."""
    for scope in set(scopes.values()):
        if isinstance(scope, GlobalScope):
            for assignment in scope.assignments[new]:
                if isinstance(assignment, Assignment):
                    return info.position(assignment.node)[0]
        for access in scope.accesses[new]:
            referents = access.referents
            if not referents or any(isinstance(a.scope, (GlobalScope, BuiltinScope))
                                    for a in referents):
                return info.position(access.node)[0]
    return None


def _captured(info: FileInfo, scopes: dict[cst.CSTNode, Scope], names: Iterable[cst.Name],
              new: str) -> int | None:
    """Line of a renamed use whose enclosing function already has a local named `new`."""
    for name in names:
        scope = scopes.get(name)
        while scope is not None and not isinstance(scope, (GlobalScope, BuiltinScope)):
            if scope.assignments[new]:
                return info.position(name)[0]
            scope = scope.parent
    return None


def _gains_binding(text: str, refs: list[Reference], old: str) -> bool:
    """Whether the file will bind the new name itself (a definition or a plain `import old`)."""
    for ref in refs:
        if ref.kind == "definition":
            return True
        if ref.kind == "import" and text_at(text, ref.line, ref.column, len(old)) == old:
            return True
    return False


def check_module_clash(found: ReferenceSet, new: str) -> None:
    """Module-level symbol: the new name must be free where it gets bound and where it is used."""
    old = found.query.old
    project = found.resolver.project
    for module in sorted(found.query.export_modules):
        if project.path_of(f"{module}.{new}") is not None:
            raise _clash(found, new, f"as module {module}.{new}")
    for rel, refs in found.by_file().items():
        info = found.resolver.info(rel)
        scopes = _scopes(info)
        if _gains_binding(project.read(rel), refs, old):
            line = _global_use(info, scopes, new)
            if line is not None:
                raise _clash(found, new, f"in {info.module} ({rel}:{line})")
        places = {(r.line, r.column) for r in refs if r.kind in ("definition", "name")}
        names = [n for n in m.findall(info.tree, m.Name(new) | m.Name(old))
                 if isinstance(n, cst.Name) and info.position(n) in places]
        line = _captured(info, scopes, names, new)
        if line is not None:
            raise _clash(found, new, f"as a local name where it is used ({rel}:{line})")


def check_member_clash(found: ReferenceSet, new: str) -> None:
    """Method or class attribute: no class of the hierarchy may define or inherit `new` already."""
    family = found.family
    assert family is not None
    for site in family.related:
        if new in site.defined or new in site.instance_attrs:
            raise _clash(found, new, f"in class {site.qualname} ({site.rel}:{site.line})")
    problems = external_problems(found.jedi, family, [new])
    if problems:
        first = problems[0]
        raise _clash(found, new,
                     f"or cannot be checked: {first.message} ({first.rel}:{first.line})")
