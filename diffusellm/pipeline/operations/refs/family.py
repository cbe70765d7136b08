"""Phase 4, refactor support: the class hierarchy of a method, so that overrides change together."""

from __future__ import annotations

import re
from dataclasses import dataclass

import libcst as cst
import libcst.matchers as m

from diffusellm.errors import OperationError
from diffusellm.pipeline.operations.refs.bindings import FileInfo, Resolver
from diffusellm.pipeline.project import Target

# Bases that add no ordinary attributes; anything else outside the repository is asked of jedi.
PLAIN_BASES = frozenset({"builtins.object", "abc.ABC", "typing.Generic", "typing.Protocol",
                         "typing_extensions.Protocol"})


@dataclass(frozen=True)
class ClassSite:
    """A class defined in the repository: where, its bases, and what its body defines."""

    qualname: str
    rel: str
    line: int
    column: int
    bases: tuple[str, ...]  # canonical qualified names ("" when the expression cannot be named)
    base_codes: tuple[str, ...]  # source text of each base expression
    defined: frozenset[str]  # names the class body defines (def, class, assignment)
    instance_attrs: frozenset[str]  # names assigned as `self.<name>` in its methods
    member_sites: tuple[tuple[str, int, int], ...]  # (name, line, column) of each def in the body


@dataclass(frozen=True)
class Family:
    """A member and its classes: `defining` define it, `owners` see it, `related` adds ancestors."""

    member: str
    defining: tuple[ClassSite, ...]
    owners: tuple[ClassSite, ...]
    related: tuple[ClassSite, ...]

    @property
    def qualnames(self) -> frozenset[str]:
        """Qualified names of every definition of the member."""
        return frozenset(f"{c.qualname}.{self.member}" for c in self.defining)

    def def_sites(self) -> set[tuple[str, int, int]]:
        """(file, line, column) of every definition name of the member."""
        return {(c.rel, line, col) for c in self.defining
                for name, line, col in c.member_sites if name == self.member}


def _body_names(node: cst.ClassDef, info: FileInfo) -> tuple[set[str], list[tuple[str, int, int]]]:
    names: set[str] = set()
    sites: list[tuple[str, int, int]] = []
    for stmt in node.body.body:
        if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
            names.add(stmt.name.value)
            sites.append((stmt.name.value, *info.position(stmt.name)))
        elif isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                targets: list[cst.BaseExpression] = (
                    [t.target for t in small.targets] if isinstance(small, cst.Assign)
                    else [small.target] if isinstance(small, cst.AnnAssign) else [])
                for target in targets:
                    if isinstance(target, cst.Name):
                        names.add(target.value)
                        sites.append((target.value, *info.position(target)))
    return names, sites


def _instance_attrs(node: cst.ClassDef) -> set[str]:
    found: set[str] = set()
    pattern = m.Attribute(value=m.Name("self"))
    matcher = m.AssignTarget(target=pattern) | m.AnnAssign(target=pattern)
    for target in m.findall(node.body, matcher):
        assert isinstance(target, (cst.AssignTarget, cst.AnnAssign))
        if isinstance(target.target, cst.Attribute):
            found.add(target.target.attr.value)
    return found


def index_classes(info: FileInfo, resolver: Resolver) -> list[ClassSite]:
    """Every class defined in a file, named as LibCST's fully qualified names name it."""
    sites: list[ClassSite] = []
    for node in m.findall(info.tree, m.ClassDef()):
        assert isinstance(node, cst.ClassDef)
        quals = sorted(info.qualified(node.name))
        if not quals:
            continue
        bases: list[str] = []
        codes: list[str] = []
        for arg in node.bases:
            expr = arg.value.value if isinstance(arg.value, cst.Subscript) else arg.value
            names = sorted(resolver.canonical(q) for q in info.qualified(expr))
            bases.append(names[0] if names else "")
            codes.append(info.tree.code_for_node(expr))
        defined, member_sites = _body_names(node, info)
        sites.append(ClassSite(quals[0], info.rel, *info.position(node.name), tuple(bases),
                               tuple(codes), frozenset(defined), frozenset(_instance_attrs(node)),
                               tuple(member_sites)))
    return sites


@dataclass
class _Index:
    resolver: Resolver
    classes: dict[str, ClassSite]
    indexed: set[str]

    def add_file(self, rel: str) -> None:
        if rel in self.indexed:
            return
        self.indexed.add(rel)
        for site in index_classes(self.resolver.info(rel), self.resolver):
            self.classes.setdefault(site.qualname, site)

    def lookup(self, qualname: str) -> ClassSite | None:
        parts = qualname.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            rel = self.resolver.project.path_of(".".join(parts[:cut]))
            if rel is not None:
                self.add_file(rel)
                break
        return self.classes.get(qualname)

    def ancestors(self, site: ClassSite) -> list[ClassSite]:
        found: list[ClassSite] = []
        todo = [b for b in site.bases if b]
        while todo:
            base = self.lookup(todo.pop(0))
            if base is not None and base not in found:
                found.append(base)
                todo.extend(b for b in base.bases if b)
        return found


def _descendants(index: _Index, roots: list[ClassSite]) -> list[ClassSite]:
    """Roots and every repository class inheriting from them (scanning files that name them)."""
    owners = {r.qualname: r for r in roots}
    project = index.resolver.project
    while True:
        names = sorted({q.rpartition(".")[2] for q in owners})
        pattern = re.compile(r"\b(?:" + "|".join(map(re.escape, names)) + r")\b")
        for rel in project.python_files():
            if rel not in index.indexed and pattern.search(project.read(rel)):
                index.add_file(rel)
        new = {q: c for q, c in index.classes.items()
               if q not in owners and any(b in owners for b in c.bases)}
        if not new:
            return list(owners.values())
        owners.update(new)


def build_family(resolver: Resolver, target: Target) -> Family:
    """The classes whose definitions of the member must change together."""
    index = _Index(resolver, {}, set())
    member = target.names[-1]
    start = index.lookup(".".join([target.module, *target.names[:-1]]))
    if start is None:
        raise OperationError(f"cannot find class {'.'.join(target.names[:-1])} in {target.path}",
                             hint="target a method of a class defined at module level")
    ancestors = index.ancestors(start)
    chain = [start, *ancestors]
    roots = [c for c in chain if member in c.defined
             and not any(member in a.defined for a in index.ancestors(c))]
    owners = _descendants(index, roots)
    defining = tuple(c for c in owners if member in c.defined)
    lineage = [a for owner in owners for a in index.ancestors(owner)]
    related = tuple({c.qualname: c for c in [*ancestors, *lineage, *owners]}.values())
    others = sorted(c.qualname for c in related if member in c.defined and c not in defining)
    if others:
        raise OperationError(
            f"{target.qualname}: {member} is also defined in {', '.join(others)}, which is not "
            "an override of it but shares subclasses with it",
            hint="untangle the multiple inheritance by hand first; nothing was changed",
        )
    return Family(member, defining, tuple(owners), related)
