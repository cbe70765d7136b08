"""Phase 4, refactor support: jedi tells what `obj.name` and `f(name=...)` refer to."""

from __future__ import annotations

import inspect
import sysconfig
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jedi  # pyright: ignore[reportMissingTypeStubs]

from diffusellm.pipeline.operations.refs.bindings import src_roots
from diffusellm.pipeline.operations.refs.family import PLAIN_BASES, ClassSite, Family
from diffusellm.pipeline.operations.refs.scan import Hit, Problem
from diffusellm.pipeline.paths import encode_source
from diffusellm.pipeline.project import Project

Site = tuple[str, int, int]  # repository-relative path, line, column


def search_path(python: str | None) -> list[str]:
    """Where jedi looks for imports: the standard library, and the repository's environment's
    packages when there is one; never diffusellm's own site-packages, where a copy of the
    repository's package may be installed."""
    stdlib = [sysconfig.get_path("stdlib"), sysconfig.get_path("platstdlib")]
    found = [*dict.fromkeys(stdlib), *(str(Path(p, "lib-dynload")) for p in stdlib[:1])]
    if python is not None:
        prefix = Path(python).parent.parent
        found += sorted(str(p) for p in prefix.glob("lib/python3*/site-packages"))
    return [p for p in found if Path(p).is_dir()]


@dataclass
class JediIndex:
    """jedi scripts over the repository's current text, one per file, created on demand.

    jedi reads imported modules from disk; when earlier operations left pending edits, it works
    on a temporary mirror of the repository's Python files with those edits applied.
    """

    project: Project
    _jedi: Any = None
    _root: Path | None = None
    _mirror: tempfile.TemporaryDirectory[str] | None = None
    _scripts: dict[str, Any] = field(default_factory=lambda: {})

    def root(self) -> Path:
        """The folder jedi sees as the repository (resolved)."""
        if self._root is None:
            self._root = self.project.root.resolve()
            if self.project.changes():
                self._mirror = tempfile.TemporaryDirectory(prefix="diffusellm-jedi-")
                self._root = Path(self._mirror.name).resolve()
                for rel in self.project.python_files():
                    path = self._root / rel
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(encode_source(rel, self.project.read(rel)))  # keeps PEP 263 files' encoding
        return self._root

    def site(self, name: Any) -> Site | None:
        """Where a jedi name is defined, as a repository site; None outside the repository."""
        path = getattr(name, "module_path", None)
        if path is None or name.line is None:
            return None
        try:
            rel = Path(path).resolve().relative_to(self.root()).as_posix()
        except ValueError:
            return None
        return rel, int(name.line), int(name.column)

    def _project(self) -> Any:
        if self._jedi is None:
            root = self.root()
            own = [str(root / p) for p in src_roots(self.project)]  # the repository's code wins
            self._jedi = jedi.Project(
                path=str(root), sys_path=[*own, *search_path(self.project.python)], added_sys_path=own,
            )
        return self._jedi

    def outside_copy(self, name: Any) -> str | None:
        """`path:line` when a jedi name is defined outside the repository in a module the repository
        itself has (an installed copy of its own code): a use that must not pass as "something else"."""
        path, module = getattr(name, "module_path", None), str(getattr(name, "module_name", "") or "")
        if path is None or self.site(name) is not None:
            return None
        tail = module.replace(".", "/")
        ends = (f"{tail}.py", f"{tail}.pyi", f"{tail}/__init__.py")
        if not module or not any(f == e or f.endswith("/" + e) for f in self.project.python_files() for e in ends):
            return None
        return f"{path}:{name.line}"

    def script(self, rel: str, extra: str = "") -> Any:
        """A jedi Script for a file (pending edits included), optionally with lines appended."""
        if extra or rel not in self._scripts:
            script = jedi.Script(self.project.read(rel) + extra, path=str(self.root() / rel),
                                 project=self._project())
            if extra:
                return script
            self._scripts[rel] = script
        return self._scripts[rel]

    def attribute_names(self, site: ClassSite, expr: str) -> set[str] | None:
        """Attribute names jedi completes on `expr` written at the end of the class's file."""
        text = self.project.read(site.rel)
        extra = ("" if text.endswith("\n") else "\n") + f"{expr}."
        script = self.script(site.rel, extra)
        lines = (text + extra).splitlines()
        try:
            names = script.complete(len(lines), len(lines[-1]))
        except Exception:  # noqa: BLE001 - jedi fails on odd code; that means "unknown"
            return None
        return {str(c.name) for c in names} or None


# Types that say nothing about which attributes an object has.
_VAGUE = frozenset({"types.ModuleType", "typing.Any", "builtins.object"})


@dataclass(frozen=True)
class Owner:
    """What a `.name` use must resolve to: definition sites, and the objects that hold them."""

    name: str
    defs: frozenset[Site]  # where the target (and overrides) are defined
    holders: frozenset[Site]  # classes related to the target (their instances hold it)
    modules: frozenset[str]  # files of the modules whose namespace holds it


def _base_problem(index: JediIndex, rel: str, use: tuple[int, int, int, int],
                  owner: Owner) -> Problem | None:
    """When goto found nothing: refuse if the object is unknown, vague or one of the holders."""
    line, _, dot_line, dot_column = use
    kinds = index.script(rel).infer(dot_line, dot_column)
    if not kinds or any(str(k.full_name) in _VAGUE for k in kinds):
        return Problem(rel, line, f"cannot tell what .{owner.name} refers to here")
    sites = {index.site(k) for k in kinds}
    paths = {s[0] for s in sites if s is not None}
    if sites & owner.holders or paths & owner.modules:
        return Problem(rel, line, f".{owner.name} on a related object that jedi cannot resolve")
    return None


def _classify(index: JediIndex, rel: str, use: tuple[int, int, int, int],
              owner: Owner) -> Hit | Problem | None:
    """One `.name` use: a hit, a problem, or None when it refers to something else."""
    line, column, _, _ = use
    script = index.script(rel)
    names = script.goto(line, column, follow_imports=True)
    copies = [c for c in (index.outside_copy(n) for n in names) if c]
    if copies:
        return Problem(rel, line, f".{owner.name} resolves outside the repository, to {copies[0]}")
    sites = {index.site(n) for n in names}
    sites.discard((rel, line, column))  # an assignment `x.name = ...` names itself
    mine = sites & owner.defs
    if mine and sites - mine:
        return Problem(rel, line, f".{owner.name} may refer to another {owner.name} too")
    if mine:
        return Hit(line, column, "attribute")
    return None if sites else _base_problem(index, rel, use, owner)


def resolve_uses(index: JediIndex, pending: dict[str, list[tuple[int, int, int, int]]],
                 owner: Owner) -> tuple[dict[str, set[Hit]], list[Problem]]:
    """Resolve each `.name` LibCST could not: hits reach the target; unknowns are problems."""
    hits: dict[str, set[Hit]] = {}
    problems: list[Problem] = []
    for rel, uses in pending.items():
        for use in uses:
            found = _classify(index, rel, use, owner)
            if isinstance(found, Hit):
                hits.setdefault(rel, set()).add(found)
            elif isinstance(found, Problem):
                problems.append(found)
    return hits, problems


def family_owner(family: Family) -> Owner:
    """The `Owner` of a method or class attribute: its definitions across the hierarchy."""
    return Owner(family.member, frozenset(family.def_sites()),
                 frozenset((c.rel, c.line, c.column) for c in family.related), frozenset())


def keyword_problems(index: JediIndex, keywords: dict[str, list[tuple[int, int]]], name: str,
                     family: Family | None) -> list[Problem]:
    """Keyword arguments `name=` whose callee does not declare `name` (or is a family class)."""
    owners = {(c.rel, c.line, c.column) for c in family.owners} if family else set[Site]()
    problems: list[Problem] = []
    for rel, places in keywords.items():
        script = index.script(rel)
        for line, column in places:
            signatures = script.get_signatures(line, column)
            declared = bool(signatures) and all(
                any(p.name == name and p.kind != inspect.Parameter.VAR_KEYWORD for p in s.params)
                and index.site(s) not in owners
                for s in signatures)
            if not declared:
                problems.append(Problem(rel, line, f"keyword argument {name}= cannot be attributed "
                                                   "to a parameter of the function called"))
    return problems


def external_problems(index: JediIndex, family: Family, names: list[str]) -> list[Problem]:
    """Bases outside the repository that define one of `names` (or cannot be inspected)."""
    problems: list[Problem] = []
    known = {c.qualname for c in family.related}
    for site in family.related:
        for qual, code in zip(site.bases, site.base_codes, strict=True):
            if qual in known or qual in PLAIN_BASES:
                continue
            attrs = index.attribute_names(site, code) if "<locals>" not in site.qualname else None
            if attrs is None:
                problems.append(Problem(site.rel, site.line,
                                        f"base {code} of {site.qualname} cannot be inspected"))
            elif clash := sorted(set(names) & attrs):
                problems.append(Problem(site.rel, site.line,
                                        f"base {code} of {site.qualname} defines {clash[0]}", code))
    return problems
