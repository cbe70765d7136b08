"""Phase 4, refactor support: module-level bindings, parsed files, and where a dotted name leads."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import libcst as cst
from libcst.helpers import get_full_name_for_node
from libcst.helpers.module import ModuleNameAndPackage
from libcst.metadata import (
    CodeRange,
    FullyQualifiedNameProvider,
    MetadataWrapper,
    PositionProvider,
    QualifiedName,
)

from diffusellm.pipeline.project import Project, resolve_relative

_MAX_HOPS = 30


@dataclass(frozen=True)
class Binding:
    """A module-level name: an import of `fqn`, or a definition made here (`fqn` = module.name)."""

    kind: Literal["import", "local"]
    fqn: str


@dataclass
class FileInfo:
    """One parsed file with the metadata the reference finder needs, resolved lazily and cached."""

    rel: str
    module: str
    is_package: bool
    wrapper: MetadataWrapper
    _positions: Mapping[cst.CSTNode, CodeRange] | None = None
    _names: Mapping[cst.CSTNode, Collection[QualifiedName]] | None = None

    @property
    def tree(self) -> cst.Module:
        """The module tree the metadata refers to."""
        return self.wrapper.module

    def position(self, node: cst.CSTNode) -> tuple[int, int]:
        """(line, column) where `node` starts; line 1-based, column 0-based in code points."""
        if self._positions is None:
            self._positions = self.wrapper.resolve(PositionProvider)
        start = self._positions[node].start
        return start.line, start.column

    def qualified(self, node: cst.CSTNode) -> set[str]:
        """Fully qualified names LibCST assigns to a Name or Attribute (empty when unknown)."""
        names = self._names
        if names is None:
            names = self._names = self.wrapper.resolve(FullyQualifiedNameProvider)
        return {q.name for q in names.get(node, ())}


def _top_level(body: Sequence[cst.CSTNode]) -> Iterator[cst.CSTNode]:
    """Statements run at module level: inside if/try/with/for blocks, not inside defs or classes."""
    for stmt in body:
        if isinstance(stmt, cst.SimpleStatementLine):
            yield from stmt.body
        elif isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
            yield stmt
        elif isinstance(stmt, cst.If):
            yield from _top_level(stmt.body.body)
            if stmt.orelse is not None:
                yield from _top_level([stmt.orelse] if isinstance(stmt.orelse, cst.If)
                                      else stmt.orelse.body.body)
        elif isinstance(stmt, cst.Try):
            for block in (stmt.body, *(h.body for h in stmt.handlers),
                          *(b.body for b in (stmt.orelse, stmt.finalbody) if b is not None)):
                yield from _top_level(block.body)
        elif isinstance(stmt, (cst.With, cst.For, cst.While)):
            yield from _top_level(stmt.body.body)


def dotted(node: cst.BaseExpression) -> str:
    """`a.b.c` for a Name/Attribute chain; empty for anything else."""
    return get_full_name_for_node(node) or ""


def import_bindings(node: cst.Import | cst.ImportFrom, module: str,
                    is_package: bool) -> list[tuple[str, str]]:
    """(local name, imported dotted name) pairs an import binds; star imports give none."""
    pairs: list[tuple[str, str]] = []
    if isinstance(node, cst.Import):
        for alias in node.names:
            full = dotted(alias.name)
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                pairs.append((alias.asname.name.value, full))
            else:
                pairs.append((full.split(".")[0], full.split(".")[0]))
        return pairs
    if isinstance(node.names, cst.ImportStar):
        return pairs
    base = resolve_relative(module, is_package, node)
    for alias in node.names:
        name = dotted(alias.name)
        local = alias.asname.name if alias.asname is not None else alias.name
        if isinstance(local, cst.Name):
            pairs.append((local.value, f"{base}.{name}" if base else name))
    return pairs


def _assigned(small: cst.CSTNode) -> list[str]:
    if isinstance(small, cst.Assign):
        return [t.target.value for t in small.targets if isinstance(t.target, cst.Name)]
    if isinstance(small, (cst.AnnAssign, cst.AugAssign)) and isinstance(small.target, cst.Name):
        return [small.target.value]
    return []


@dataclass
class Resolver:
    """Parses files once and answers: what does a module bind, and where does a dotted name lead."""

    project: Project
    _files: dict[str, FileInfo] = field(default_factory=lambda: {})
    _bindings: dict[str, dict[str, Binding]] = field(default_factory=lambda: {})
    _stars: dict[str, list[str]] = field(default_factory=lambda: {})
    _canonical: dict[str, str] = field(default_factory=lambda: {})

    def info(self, rel: str) -> FileInfo:
        """The parsed file with its metadata wrapper (cached)."""
        if rel not in self._files:
            module = self.project.module_of(rel)
            is_package = Path(rel).name in ("__init__.py", "__init__.pyi")
            package = module if is_package else module.rpartition(".")[0]
            wrapper = MetadataWrapper(
                self.project.parse(rel), unsafe_skip_copy=True,
                cache={FullyQualifiedNameProvider: ModuleNameAndPackage(module, package)},
            )
            self._files[rel] = FileInfo(rel, module, is_package, wrapper)
        return self._files[rel]

    def bindings(self, module: str) -> dict[str, Binding]:
        """Names bound at module level in `module`; imports win over fallback assignments."""
        if module not in self._bindings:
            self._scan_module(module)
        return self._bindings[module]

    def stars(self, module: str) -> list[str]:
        """Modules `module` star-imports from."""
        if module not in self._stars:
            self._scan_module(module)
        return self._stars[module]

    def _scan_module(self, module: str) -> None:
        found: dict[str, Binding] = {}
        stars: list[str] = []
        rel = self.project.path_of(module)
        if rel is not None:
            info = self.info(rel)
            for node in _top_level(info.tree.body):
                self._bind(node, info, found, stars)
        self._bindings[module] = found
        self._stars[module] = stars

    @staticmethod
    def _bind(node: cst.CSTNode, info: FileInfo, found: dict[str, Binding],
              stars: list[str]) -> None:
        if isinstance(node, (cst.Import, cst.ImportFrom)):
            if isinstance(node, cst.ImportFrom) and isinstance(node.names, cst.ImportStar):
                stars.append(resolve_relative(info.module, info.is_package, node))
            for local, full in import_bindings(node, info.module, info.is_package):
                if found.get(local, Binding("local", "")).kind != "import":
                    found[local] = Binding("import", full)
            return
        is_def = isinstance(node, (cst.FunctionDef, cst.ClassDef))
        names = [node.name.value] if is_def else _assigned(node)
        for name in names:
            found.setdefault(name, Binding("local", f"{info.module}.{name}"))

    def canonical(self, fqn: str) -> str:
        """Follow imports and re-exports inside the repository to where `fqn` is defined."""
        if fqn not in self._canonical:
            self._canonical[fqn] = fqn  # guards import cycles while resolving
            self._canonical[fqn] = self._follow(fqn, 0)
        return self._canonical[fqn]

    def _follow(self, fqn: str, hops: int) -> str:
        parts = fqn.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            module = ".".join(parts[:cut])
            if self.project.path_of(module) is None:
                continue
            name, rest = parts[cut], parts[cut + 1:]
            nxt = self._lookup(module, name)
            if nxt is None or hops >= _MAX_HOPS:
                return fqn
            target = ".".join([nxt, *rest])
            return fqn if target == fqn else self._follow(target, hops + 1)
        return fqn

    def _lookup(self, module: str, name: str) -> str | None:
        """Where `module.name` leads: the imported name, or None when defined here or unknown."""
        binding = self.bindings(module).get(name)
        if binding is not None:
            return binding.fqn if binding.kind == "import" else None
        for star in self.stars(module):
            if name in self.bindings(star) or self.stars(star):
                return f"{star}.{name}"
        return None

    def resolve_in(self, module: str, parts: Sequence[str]) -> str:
        """Fully qualified name of a dotted mention in `module` (first part looked up there)."""
        binding = self.bindings(module).get(parts[0])
        head = binding.fqn if binding is not None else parts[0]
        return self.canonical(".".join([head, *parts[1:]]))


def src_roots(project: Project) -> list[Path]:
    """Folders (relative to the root) to put on sys.path so every module imports by its name."""
    roots: set[Path] = set()
    for module, rel in project.modules.items():
        depth = len(module.split(".")) + (1 if Path(rel).name == "__init__.py" else 0)
        parents = Path(rel).parents
        roots.add(parents[depth - 1] if depth - 1 < len(parents) else Path("."))
    return sorted(roots)
