"""Phase 4, refactor support: every use of a symbol in the repository, or a refusal."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import libcst as cst
import libcst.matchers as m
import structlog

from diffusellm.errors import OperationError
from diffusellm.pipeline.operations.refs.bindings import FileInfo, Resolver, import_bindings
from diffusellm.pipeline.operations.refs.family import Family, build_family
from diffusellm.pipeline.operations.refs.jedi import (
    JediIndex,
    Owner,
    external_problems,
    family_owner,
    keyword_problems,
    resolve_uses,
)
from diffusellm.pipeline.operations.refs.scan import Hit, Problem, Query, RefKind, ScanResult, scan_file
from diffusellm.pipeline.project import Project, Target

log = structlog.get_logger(__name__)
_MAX_LISTED = 15


@dataclass(frozen=True)
class Reference:
    """One place that names the target: 1-based line, 0-based column of the identifier itself."""

    path: str
    line: int
    column: int
    kind: RefKind


@dataclass
class ReferenceSet:
    """The references of a target and what was learnt finding them (reused by rename, params)."""

    target: Target
    query: Query
    resolver: Resolver
    jedi: JediIndex
    family: Family | None
    refs: list[Reference] = field(default_factory=lambda: [])

    def by_file(self) -> dict[str, list[Reference]]:
        """References grouped by file."""
        grouped: dict[str, list[Reference]] = {}
        for ref in self.refs:
            grouped.setdefault(ref.path, []).append(ref)
        return grouped


def _word_pattern(names: Iterable[str]) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(sorted(map(re.escape, names))) + r")\b")


def _files_naming(project: Project, names: Iterable[str]) -> list[str]:
    pattern = _word_pattern(names)
    project.mentions_undecodable(re.compile(pattern.pattern.encode("utf-8")))
    found: list[str] = []
    for rel in project.python_files():
        if rel in project.skipped:
            continue
        try:
            text = project.read(rel)
        except OperationError as exc:  # not UTF-8 (a PEP 263 declared encoding, or binary)
            project.skip(rel, exc.message)
            continue
        if pattern.search(text):
            found.append(rel)
    return found


def _analysable(project: Project, resolver: Resolver, rel: str, needed: str) -> FileInfo | None:
    """The file's parse and metadata, or None (skipped with the reason) when LibCST cannot resolve
    its names (a relative import beyond the top package, an odd namespace layout).

    A file that names the symbol but cannot be parsed at all is a refusal naming it: nothing can tell
    whether it uses the symbol, and a change around it could leave it stale. So is the file the
    operation needs (`needed`)."""
    try:
        info = resolver.info(rel)
    except OperationError as exc:
        raise OperationError(f"cannot analyse {rel}: {exc.message}",
                             hint="fix that file first (it names the symbol); nothing was changed") from None
    try:
        info.qualified(info.tree)  # resolves LibCST's qualified names for the whole file now
    except OperationError as exc:
        reason = exc.message
    except (ImportError, ValueError, KeyError, RecursionError) as exc:
        reason = f"LibCST cannot resolve its names: {type(exc).__name__}: {exc}"
    else:
        return info
    if rel == needed:
        raise OperationError(f"cannot analyse {rel}: {reason}",
                             hint="fix that file first; nothing was changed")
    project.skip(rel, reason)
    log.warning("refs.file_skipped", path=rel, reason=reason)
    return None


def _module_query(project: Project, resolver: Resolver, target: Target) -> Query:
    """Query for a module-level symbol: follow import aliases and re-exports to a fixed point."""
    old, qual = target.names[-1], target.qualname
    names, exports = {old}, {target.module}
    done: set[str] = set()
    while True:
        todo = [rel for rel in _files_naming(project, names) if rel not in done]
        if not todo:
            break
        for rel in todo:
            done.add(rel)
            info = _analysable(project, resolver, rel, target.path)
            if info is None:
                continue
            for node in m.findall(info.tree, m.ImportFrom()):
                assert isinstance(node, cst.ImportFrom)
                for local, full in import_bindings(node, info.module, info.is_package):
                    if resolver.canonical(full) == qual:
                        names.add(local)
            if any(b.kind == "import" and resolver.canonical(b.fqn) == qual
                   for b in resolver.bindings(info.module).values()):
                exports.add(info.module)
    return Query(old, frozenset(names), frozenset({qual}), target.module, member=False,
                 export_modules=frozenset(exports))


def _member_query(target: Target, family: Family) -> Query:
    old = target.names[-1]
    return Query(old, frozenset({old}), family.qualnames, target.module, member=True,
                 owners=frozenset(c.qualname for c in family.owners))


def describe_problems(what: str, problems: list[Problem]) -> str:
    """A refusal message listing the doubtful uses as file:line."""
    ordered = sorted(set(problems), key=lambda p: (p.rel, p.line, p.message))
    lines = [f"  {p.rel}:{p.line}: {p.message}" for p in ordered[:_MAX_LISTED]]
    if len(ordered) > _MAX_LISTED:
        lines.append(f"  ... and {len(ordered) - _MAX_LISTED} more")
    return f"{what}: {len(ordered)} use(s) cannot be resolved safely:\n" + "\n".join(lines)


def _refuse(target: Target, problems: list[Problem]) -> None:
    overrides = sorted({p for p in problems if p.overridden}, key=lambda p: (p.rel, p.line))
    if overrides:
        first = overrides[0]
        name = target.names[-1]
        raise OperationError(
            f"{target.qualname} overrides {name} of {first.overridden}, a base class outside the "
            f"repository ({first.rel}:{first.line}): renamed, it would stop overriding it, and "
            f"code that calls {name} through that base's interface would get the base's {name}",
            hint=f"keep the name {name}; to offer a new one as well, add a method that calls "
                 f"{name} by hand; nothing was changed")
    if problems:
        raise OperationError(
            describe_problems(target.qualname, problems),
            hint="make each use resolvable (annotate variables such as `store: Store`, import "
                 "modules by name) or change these uses by hand first; nothing was changed",
        )


def collect_references(project: Project, target: Target,
                       resolver: Resolver | None = None) -> ReferenceSet:
    """Every reference of `target`; OperationError if any use cannot be resolved safely."""
    resolver = resolver or Resolver(project)
    index = JediIndex(project)
    family = build_family(resolver, target) if len(target.names) > 1 else None
    query = _member_query(target, family) if family else _module_query(project, resolver, target)
    problems: list[Problem] = []
    if family is not None:
        problems += external_problems(index, family, [query.old])
    infos = {rel: _analysable(project, resolver, rel, target.path)
             for rel in _files_naming(project, query.names)}
    results = {rel: scan_file(info, resolver, query) for rel, info in infos.items() if info is not None}
    hits = {rel: set(r.hits) for rel, r in results.items()}
    problems += [p for r in results.values() for p in r.problems]
    owner = family_owner(family) if family else _module_owner(project, target, query, hits)
    more, unresolved = resolve_uses(index, _pending(results), owner)
    problems += unresolved
    for rel, found in more.items():
        hits.setdefault(rel, set()).update(found)
    keywords = {rel: r.keywords for rel, r in results.items() if r.keywords}
    problems += keyword_problems(index, keywords, query.old, family)
    _refuse(target, problems)
    refs = sorted((Reference(rel, h.line, h.column, h.kind) for rel, found in hits.items()
                   for h in found), key=lambda r: (r.path, r.line, r.column, r.kind))
    return ReferenceSet(target, query, resolver, index, family, refs)


def _module_owner(project: Project, target: Target, query: Query,
                  hits: dict[str, set[Hit]]) -> Owner:
    defs = {(target.path, h.line, h.column) for h in hits.get(target.path, set())
            if h.kind == "definition"}
    modules = {project.path_of(m) for m in query.export_modules}
    return Owner(query.old, frozenset(defs), frozenset(), frozenset(p for p in modules if p))


def _pending(results: dict[str, ScanResult]) -> dict[str, list[tuple[int, int, int, int]]]:
    return {rel: r.pending for rel, r in results.items() if r.pending}


def find_references(project: Project, target: Target) -> list[Reference]:
    """Every place in the repository that names `target`, sorted by file and position.

    Raises OperationError (naming file:line) when a use cannot be resolved safely: dynamic access
    by string, an attribute jedi cannot resolve, a keyword argument that cannot be attributed.
    """
    return collect_references(project, target).refs
