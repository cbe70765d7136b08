"""Shared ground for the refactor operations: a virtual view of the repository's Python files and target lookup."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import libcst as cst
import libcst.helpers
import structlog

from diffusellm.errors import OperationError
from diffusellm.pipeline.paths import (
    UnsafePathError,
    check_path,
    decode_source,
    is_plain_file,
    link_in_path,
    read_file,
)
from diffusellm.pipeline.workspace import run_git

log = structlog.get_logger(__name__)

SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".venv",
        "venv",
        "env",
        ".tox",
        ".nox",
        "node_modules",
        "build",
        "dist",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        "site-packages",
    }
)

SymbolKind = Literal["function", "class", "method", "variable"]


def _candidate_python_files(root: Path) -> list[str]:
    """Python files git tracks or would add (or, outside git, found on disk), links included."""
    args = ["ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", "*.py", "*.pyi"]
    proc = run_git(args, root, check=False)
    if proc.returncode == 0:
        return sorted({p for p in proc.stdout.decode("utf-8", "surrogateescape").split("\0") if p})
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*.py"))


def _outside_skipped_dirs(rel: str) -> bool:
    return not SKIP_DIRS.intersection(Path(rel).parts[:-1])


def list_python_files(root: Path) -> list[str]:
    """Repository-relative paths of the Python files git tracks (or, outside git, found on disk).

    Only regular files reached without a symbolic link count; linked ones are left alone.
    """
    found = _candidate_python_files(root)
    return [p for p in found if _outside_skipped_dirs(p) and is_plain_file(root, p)]


def module_name_for(root: Path, rel: str) -> str:
    """The dotted module name of a file: its path from the first ancestor without `__init__.py`."""
    path = Path(rel)
    parts = [path.stem] if path.stem != "__init__" else []
    parent = path.parent
    while parent != Path(".") and (root / parent / "__init__.py").exists():
        parts.insert(0, parent.name)
        parent = parent.parent
    return ".".join(parts)


@dataclass
class Project:
    """The repository's Python files with pending edits overlaid; operations read and write through it.

    Files that are symbolic links (or below one) are not part of it; files that cannot be decoded
    are skipped with a warning, kept as bytes so an operation that needs them can refuse by name.
    """

    root: Path
    files: list[str]
    modules: dict[str, str]
    undecodable: dict[str, tuple[str, bytes]] = field(default_factory=lambda: {})
    _overlay: dict[str, str | None] = field(default_factory=lambda: {})
    _cache: dict[str, str] = field(default_factory=lambda: {})
    python: str | None = None
    """The repository's environment's interpreter (its packages are what imports resolve to)."""
    skipped: dict[str, str] = field(default_factory=lambda: {})
    """Files an analysis could not handle and left out (path → why), for the run's warnings."""

    @classmethod
    def load(cls, root: Path, python: str | None = None) -> Project:
        """Index the Python files under `root` by module name."""
        project = cls(root=root, files=[], modules={}, python=python)
        for rel in list_python_files(root):
            data = read_file(root, rel)
            try:
                project._cache[rel] = decode_source(data)  # no newline translation: CRLF stays
            except UnicodeError as exc:
                log.warning("undecodable source skipped", path=rel, reason=str(exc))
                project.undecodable[rel] = (str(exc), data)
                continue
            project.files.append(rel)
            name = module_name_for(root, rel)
            if name and not rel.endswith(".pyi"):
                project.modules.setdefault(name, rel)
        return project

    def read(self, rel: str) -> str:
        """Current text of a file, pending edits included."""
        if rel in self._overlay:
            text = self._overlay[rel]
            if text is None:
                raise OperationError(f"{rel} was deleted by an earlier operation")
            return text
        if rel in self.undecodable:
            raise OperationError(
                f"cannot refactor safely: {rel} cannot be decoded: {self.undecodable[rel][0]}",
                hint="fix or convert the file (UTF-8, or a PEP 263 coding line); nothing was changed",
            )
        if rel not in self._cache:
            self.refuse_link(rel)
            self._cache[rel] = decode_source(read_file(self.root, rel))
        return self._cache[rel]

    def refuse_link(self, rel: str) -> None:
        """Refuse a path that is or passes through a symbolic link, or that is outside or in .git/."""
        try:
            check_path(self.root, rel)
        except UnsafePathError as exc:
            raise UnsafePathError(f"cannot refactor safely: {exc.message}", hint=exc.hint) from None

    def write(self, rel: str, text: str) -> None:
        """Record new text for a file (created if new); a no-op edit is not recorded."""
        self.refuse_link(rel)
        if rel not in self._overlay and rel in self._cache and self._cache[rel] == text:
            return
        if rel in self.undecodable:
            self.read(rel)
        if rel not in self.files:
            self.files.append(rel)
            if not rel.endswith(".pyi"):
                self.modules.setdefault(module_name_for(self.root, rel), rel)
        self._overlay[rel] = text

    def mentions_undecodable(self, pattern: re.Pattern[bytes]) -> None:
        """Refuse when a file that could not be decoded matches `pattern` (the operation needs it)."""
        for rel, (reason, data) in sorted(self.undecodable.items()):
            if pattern.search(data):
                raise OperationError(
                    f"cannot refactor safely: {rel} may use the target but cannot be decoded: {reason}",
                    hint="fix or convert the file (UTF-8, or a PEP 263 coding line); nothing was changed",
                )

    def link_module(self, module: str) -> str | None:
        """The symbolic link a dotted module name would be read through, if any."""
        rel = module.replace(".", "/")
        for candidate in (f"{rel}.py", f"{rel}/__init__.py"):
            link = link_in_path(self.root, candidate)
            if link is not None:
                return link
        return None

    def python_files(self) -> list[str]:
        """All Python files, including those created by earlier operations."""
        return [f for f in self.files if self._overlay.get(f, "") is not None]

    def module_of(self, rel: str) -> str:
        """Dotted module name of a file."""
        return module_name_for(self.root, rel)

    def path_of(self, module: str) -> str | None:
        """Relative path of a module, or None when the repository has no such module."""
        return self.modules.get(module)

    def parse(self, rel: str) -> cst.Module:
        """Parse a file with LibCST; a syntax error becomes an OperationError naming the file."""
        try:
            return cst.parse_module(self.read(rel))
        except cst.ParserSyntaxError as exc:
            raise OperationError(
                f"cannot refactor safely: {rel} has a syntax error at line {exc.raw_line}",
                hint="fix the syntax error first; nothing was changed",
            ) from None

    def skip(self, rel: str, reason: str) -> None:
        """Leave a file the analysis cannot handle out of it, and remember why."""
        self.skipped.setdefault(rel, reason)

    def skipped_warnings(self) -> list[str]:
        """One warning per skipped file, naming it and what that means."""
        return [
            f"{rel} was skipped ({why}); uses of the changed names in it, if any, were not updated"
            for rel, why in sorted(self.skipped.items())
        ]

    def changes(self) -> dict[str, str | None]:
        """Files changed so far: path → new text (None when deleted)."""
        return dict(self._overlay)


@dataclass(frozen=True)
class Target:
    """A resolved definition: the module that defines it and the path of names inside the module."""

    qualname: str
    module: str
    path: str
    names: tuple[str, ...]
    kind: SymbolKind


def _defs_in_body(body: object, name: str) -> list[cst.CSTNode]:
    """Definitions (def, class, assignment) of `name` directly in a module or class body."""
    found: list[cst.CSTNode] = []
    statements: list[cst.CSTNode] = list(getattr(body, "body", []))
    for stmt in statements:
        if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)) and stmt.name.value == name:
            found.append(stmt)
        elif isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                if isinstance(small, (cst.Assign, cst.AnnAssign)) and name in _assigned_names(
                    small
                ):
                    found.append(small)
        elif isinstance(stmt, cst.If):
            found.extend(_defs_in_body(stmt.body, name))
    return found


def is_overload(node: cst.CSTNode) -> bool:
    """A function decorated `@overload` (or `@typing.overload`, any spelling ending so)."""
    return isinstance(node, cst.FunctionDef) and any(
        (libcst.helpers.get_full_name_for_node(d.decorator) or "").rpartition(".")[2] == "overload"
        for d in node.decorators)


def _overloads(defs: Sequence[cst.CSTNode]) -> bool:
    """`@overload` signatures followed by their one implementation: a single function."""
    return all(is_overload(d) for d in defs[:-1]) and isinstance(defs[-1], cst.FunctionDef)


def _assigned_names(node: cst.Assign | cst.AnnAssign) -> set[str]:
    targets = [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
    return {t.value for t in targets if isinstance(t, cst.Name)}


def _kind_of(node: cst.CSTNode, in_class: bool) -> SymbolKind:
    if isinstance(node, cst.ClassDef):
        return "class"
    if isinstance(node, cst.FunctionDef):
        return "method" if in_class else "function"
    return "variable"


def _split_module(project: Project, qualname: str) -> tuple[str, list[str]]:
    parts = qualname.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module = ".".join(parts[:cut])
        if project.path_of(module) is not None:
            return module, parts[cut:]
        link = project.link_module(module)
        if link is not None:
            raise UnsafePathError(
                f"cannot refactor safely: {link} is a symbolic link (target {qualname!r} is behind it)",
                hint="links are left alone; refactor the file the link points to in its own repository",
            )
    raise OperationError(
        f"target {qualname!r} names no module of this repository",
        hint="use the dotted path of the defining module, e.g. mypkg.helpers.func",
    )


def find_definitions(
    project: Project, module: str, names: list[str]
) -> tuple[list[cst.CSTNode], bool]:
    """Definitions of `names` (a name, or Class.name) inside `module`, and whether they are in a class."""
    path = project.path_of(module)
    assert path is not None
    scope: object = project.parse(path)
    in_class = False
    for depth, name in enumerate(names):
        defs = _defs_in_body(scope, name)
        if depth == len(names) - 1 or not defs:
            return defs, in_class
        if len(defs) != 1 or not isinstance(defs[0], cst.ClassDef):
            return [], in_class
        scope = defs[0].body
        in_class = True
    return [], in_class


def reexport_source(project: Project, module: str, name: str) -> str | None:
    """If `module` only imports `name` (`from .x import name`), the module it comes from."""
    path = project.path_of(module)
    if path is None:
        return None
    tree = project.parse(path)
    is_package = path.endswith("__init__.py")
    for stmt in tree.body:
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        for small in stmt.body:
            if not isinstance(small, cst.ImportFrom) or isinstance(small.names, cst.ImportStar):
                continue
            for alias in small.names:
                local = alias.asname.name if alias.asname else alias.name
                if (
                    isinstance(local, cst.Name)
                    and local.value == name
                    and isinstance(alias.name, cst.Name)
                ):
                    return resolve_relative(module, is_package, small)
    return None


def resolve_relative(module: str, is_package: bool, node: cst.ImportFrom) -> str:
    """Absolute module name of an ImportFrom, resolving leading dots against `module`."""
    dots = len(node.relative)
    name = (libcst.helpers.get_full_name_for_node(node.module) or "") if node.module else ""
    if dots == 0:
        return name or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (dots - 1)] if dots > 1 else base
    return ".".join([*base, name] if name else base)


def resolve_target(project: Project, qualname: str, *, overloads: bool = False) -> Target:
    """Find the one definition `qualname` names, following one package re-export; refuse otherwise.

    `overloads`: `@overload` signatures and their implementation count as one definition (a
    rename changes them all; changing one signature or moving one statement would not do)."""
    module, names = _split_module(project, qualname)
    defs, in_class = find_definitions(project, module, names)
    if not defs and len(names) == 1:
        source = reexport_source(project, module, names[0])
        if source and project.path_of(source):
            module = source
            defs, in_class = find_definitions(project, module, names)
    if not defs:
        raise OperationError(
            f"target {qualname!r} not found: {module} defines no {'.'.join(names)}",
            hint="check the spelling; the target must be defined in this repository",
        )
    kinds: set[SymbolKind] = {_kind_of(d, in_class) for d in defs}
    if len(defs) > 1 and kinds != {"variable"} and not (overloads and _overloads(defs)):
        raise OperationError(
            f"target {qualname!r} is ambiguous: defined {len(defs)} times in {module}"
            + (" (overloaded signatures)" if _overloads(defs) else ""),
            hint="refactor conditional, repeated or overloaded definitions by hand first",
        )
    path = project.path_of(module)
    assert path is not None
    return Target(
        qualname=f"{module}.{'.'.join(names)}",
        module=module,
        path=path,
        names=tuple(names),
        kind=kinds.pop(),
    )
