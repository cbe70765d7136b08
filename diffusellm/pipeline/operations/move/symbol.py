"""Phase 4, operation move_symbol: move a module-level function or class to another module.

Supported: module-level `def` and `class` (decorators, attached comments and docstring move
with it). An `@overload` set moves whole; type variables it uses are copied; its `.pyi` stub
signatures move into the destination's stub; a module that star-imports the old one keeps the
name through a re-export from the old module. Refused: methods, nested or conditional
definitions, module-level variables (importers would get a copy of the value, not the
variable), a name the destination already binds, dynamic access by name, and moves that would
create an import cycle at import time (the old module still uses the symbol while the moved
code needs names from the old module, or any new import closes a loop through other modules,
e.g. a package `__init__` that imports the destination). Nothing is written before every
check has passed.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import replace
from pathlib import PurePosixPath

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from diffusellm.errors import OperationError
from diffusellm.pipeline.operations.move.assemble import (
    NOTHING,
    build_new,
    build_old,
    prefers_relative,
)
from diffusellm.pipeline.operations.move.build import Dest, all_names, bindings, dunder_all
from diffusellm.pipeline.operations.move.cycles import import_time_nodes, new_cycle
from diffusellm.pipeline.operations.move.deps import Needs, Source, analyse, definition_indices
from diffusellm.pipeline.operations.move.imports import ImportSpec
from diffusellm.pipeline.operations.move.refs import (
    FileRewrite,
    MoveNames,
    names_taken,
    rewrite_file,
    scan_file,
)
from diffusellm.pipeline.operations.move.stubs import stub_changes, stub_move
from diffusellm.pipeline.operations.refs.declared import refuse_declared
from diffusellm.pipeline.project import Project, Target, resolve_relative, resolve_target
from diffusellm.pipeline.spec import MoveSymbol


def apply_move(project: Project, op: MoveSymbol) -> None:
    """Move `op.target` to `op.to_module`, rewrite importers; if unsafe refuse, writing nothing."""
    try:
        target = resolve_target(project, op.target, overloads=True)
    except OperationError:
        _refuse_nested(project, op.target)
        raise
    changes, modules = plan_move(project, target, op.to_module)
    for rel, text in changes.items():
        project.write(rel, text)
    for module, rel in modules.items():
        for name, path in list(project.modules.items()):
            if path == rel and name != module:
                del project.modules[name]
        project.modules[module] = rel


def plan_move(project: Project, target: Target, to_module: str
              ) -> tuple[dict[str, str], dict[str, str]]:
    """All file edits of the move (path → text) and the modules it creates (name → path)."""
    src = _source(project, target)
    refuse_declared(project, target, "move")
    if to_module == src.module:
        raise OperationError(f"{target.qualname} is already in {to_module}",
                             hint="name a different to_module")
    dest = _destination(project, to_module, src)
    # A new module is first-party too: ruff finds it in the work copy when it sorts the imports.
    tops = {m.split(".")[0] for m in project.modules} | {dest.module.split(".")[0]}
    dest = replace(dest, first_party=frozenset(tops))
    names = MoveNames(src.module, dest.module, src.name)
    _refuse_clash(dest, names)
    relative = prefers_relative(dest, src)
    needs = analyse(src, dest.module, relative)
    stubs = stub_move(project, src, dest)
    skip = {src.path, dest.path, *((stubs.src.path, stubs.dest.path) if stubs else ())}
    importers, taken = _rewrite_importers(project, names, src, dest, skip,
                                         needs.used_imports)
    reexport = _reexported(project, src, skip)
    old_tree = build_old(src, dest, needs, taken, reexport, relative)
    _refuse_cycle(src, dest, needs, old_tree)
    new_tree = build_new(src, dest, needs)
    _refuse_new_cycle(project, src, dest, {**{
        project.module_of(rel): (r.tree, rel.endswith("__init__.py"))
        for rel, r in importers.items() if r.changed}, src.module: (old_tree, src.is_package),
        dest.module: (new_tree, dest.is_package)})
    changes = {rel: r.tree.code for rel, r in importers.items() if r.changed}
    changes.update({init: "" for init in dest.new_inits})
    changes[dest.path] = new_tree.code
    changes[src.path] = old_tree.code
    changes.update(stub_changes(stubs, relative, reexport) if stubs else {})
    created = {_package_of_init(dest.module, i, dest.new_inits): i for i in dest.new_inits}
    created.update({dest.module: dest.path} if not dest.exists else {})
    return changes, created


def _refuse_nested(project: Project, qualname: str) -> None:
    """Explain a target that is not found because it is defined inside a function."""
    parts = qualname.split(".")
    for cut in range(len(parts) - 1, 1, -1):
        try:
            outer = resolve_target(project, ".".join(parts[:cut]))
        except OperationError:
            continue
        if outer.kind in ("function", "method"):
            raise OperationError(
                f"cannot move {qualname}: it is nested inside the function {outer.qualname}",
                hint=f"only module-level definitions move ({_where(project, outer)})") from None
        return


def _where(project: Project, target: Target) -> str:
    """`path:line` of the target's definition, for hints."""
    tree = project.parse(target.path)
    scope: cst.Module | cst.ClassDef = tree
    node: cst.CSTNode | None = None
    for name in target.names:
        body = scope.body if isinstance(scope, cst.Module) else scope.body.body
        node = next((s for s in body if isinstance(s, cst.FunctionDef | cst.ClassDef)
                     and s.name.value == name), None)
        if not isinstance(node, cst.ClassDef):
            break
        scope = node
    if node is None:
        return target.path
    line = MetadataWrapper(tree, unsafe_skip_copy=True).resolve(PositionProvider)[node].start.line
    return f"{target.path}:{line}"


def _source(project: Project, target: Target) -> Source:
    where = _where(project, target)
    if target.kind == "method" or len(target.names) > 1:
        raise OperationError(f"cannot move {target.qualname}: only module-level functions and "
                             f"classes can be moved, this one is inside a class",
                             hint=f"move the whole class instead ({where})")
    if target.kind == "variable":
        raise OperationError(f"cannot move {target.qualname}: it is a module-level variable",
                             hint="importers would keep a copy of the old value; move it by "
                                  f"hand or wrap it in a function ({where})")
    tree = project.parse(target.path)
    name = target.qualname.rpartition(".")[2]
    return Source(target.module, target.path, target.path.endswith("__init__.py"), tree,
                  definition_indices(tree, name, target.path), name)


def _destination(project: Project, to_module: str, src: Source) -> Dest:
    existing = project.path_of(to_module)
    if existing is not None:
        return Dest(to_module, existing, existing.endswith("__init__.py"),
                    project.parse(existing), True)
    parent, _, last = to_module.rpartition(".")
    inits: list[str] = []
    directory = _package_dir(project, parent, inits, src)
    path = posixpath.join(directory, f"{last}.py") if directory else f"{last}.py"
    root = project.root
    if path in project.files or (root / path).exists() or (root / path[:-3]).is_dir():
        raise OperationError(f"cannot create {to_module}: {path} is already there",
                             hint="choose another to_module or remove that file")
    return Dest(to_module, path, False, cst.Module(body=[]), False, tuple(inits))


def _package_dir(project: Project, package: str, inits: list[str], src: Source) -> str:
    """Directory of `package`, planning `__init__.py` for missing packages under a real one."""
    if not package:
        parts = PurePosixPath(src.path).parts
        depth = len(src.module.split(".")) + (1 if src.is_package else 0)
        return "/".join(parts[: len(parts) - depth])
    path = project.path_of(package)
    link = project.link_module(package) if path is None else None
    if link is not None:
        project.refuse_link(link)
    if path is not None:
        if not path.endswith("__init__.py"):
            raise OperationError(f"cannot create a module inside {package}: it is a module "
                                 f"({path}), not a package", hint="choose a package as parent")
        return posixpath.dirname(path)
    grand, _, last = package.rpartition(".")
    if not grand:
        raise OperationError(f"cannot move to a new top-level package {package}",
                             hint="create the package first, or move into an existing package")
    directory = posixpath.join(_package_dir(project, grand, inits, src), last)
    if any(f.startswith(directory + "/") for f in project.files):
        raise OperationError(f"cannot make {directory}/ a package: it already holds Python files "
                             f"without __init__.py", hint="add the __init__.py by hand first")
    inits.append(f"{directory}/__init__.py")
    return directory


def _package_of_init(module: str, init: str, inits: tuple[str, ...]) -> str:
    depth = len(inits) - inits.index(init)
    return ".".join(module.split(".")[:-depth])


def _refuse_clash(dest: Dest, names: MoveNames) -> None:
    have = bindings(dest.tree, dest.module, dest.is_package).get(names.name, "absent")
    ours = ImportSpec(names.old, names.name)
    if have == "absent" or (isinstance(have, ImportSpec) and have.same_binding(ours)):
        return
    raise OperationError(f"cannot move {names.name}: {dest.module} already defines "
                         f"{names.name} ({dest.path})",
                         hint="rename one of the two first; " + NOTHING)


def _rewrite_importers(project: Project, names: MoveNames, src: Source, dest: Dest,
                       skip: set[str], candidates: set[str]) -> tuple[dict[str, FileRewrite], set[str]]:
    """Rewrite files that mention the symbol, except those in `skip` (the two modules and their
    stubs, built whole); also collect which `candidates` others take from the old module (a
    cheap syntactic pass for files that do not mention the symbol)."""
    project.mentions_undecodable(re.compile(rb"\b" + re.escape(names.name.encode("utf-8")) + rb"\b"))
    refusals = scan_file(src.tree, names, dest.ctx(src.path, src.module, src.is_package, "old")
                         ).refusals  # the old module reaching itself by name, e.g. via importlib
    results: dict[str, FileRewrite] = {}
    taken: set[str] = set()
    old_last = names.old.rpartition(".")[2]
    for rel in project.python_files():
        text = project.read(rel) if rel not in skip else ""
        mentions = names.name in text
        if not mentions and not (old_last in text and any(c in text for c in candidates)):
            continue
        module = project.module_of(rel)
        ctx = dest.ctx(rel, module, rel.endswith(("__init__.py", "__init__.pyi")), "importer")
        if not mentions:
            taken |= names_taken(project.parse(rel), names, ctx) & candidates
            continue
        results[rel] = rewrite_file(project.parse(rel), names, ctx)
        taken |= results[rel].taken
        refusals.extend(results[rel].refusals)
    if refusals:
        raise OperationError(
            f"cannot move {names.old_path}: it is reached by name at run time:\n  "
            + "\n  ".join(refusals[:10]),
            hint="change those places to import the symbol normally first; " + NOTHING)
    return results, taken


def _reexported(project: Project, src: Source, skip: set[str]) -> bool:
    """Whether the old module must keep offering the moved name: a package's `__all__` lists it,
    or a module other than the two (`skip`: them and their stubs) star-imports the old one and
    got the name that way (a package `__init__` with `from .core import *` makes it part of the
    package's interface)."""
    if src.is_package:
        return src.name in all_names(src.tree)
    by_star = (src.name in all_names(src.tree) if dunder_all(src.tree) is not None
               else not src.name.startswith("_"))
    return by_star and any(_star_imports(project, rel, src.module) for rel in project.python_files()
                           if rel not in skip and rel not in project.undecodable)


def _star_imports(project: Project, rel: str, module: str) -> bool:
    """Whether `rel` runs `from <module> import *` when it is imported."""
    if "import *" not in project.read(rel):
        return False
    here, package = project.module_of(rel), rel.endswith(("__init__.py", "__init__.pyi"))
    return any(isinstance(node, cst.ImportFrom) and isinstance(node.names, cst.ImportStar)
               and resolve_relative(here, package, node) == module
               for node in import_time_nodes(project.parse(rel)))


def _runtime_imports(tree: cst.Module, module: str, is_package: bool,
                     ignore: tuple[str, str] = ("", "")) -> set[str]:
    """Modules imported when `module` is imported (not in functions or TYPE_CHECKING blocks)."""
    found: set[str] = set()
    for node in import_time_nodes(tree):
        if isinstance(node, cst.Import):
            found.update(a.evaluated_name for a in node.names)
            continue
        source = resolve_relative(module, is_package, node)
        if isinstance(node.names, cst.ImportStar):
            found.add(source)
            continue
        aliases = [a.evaluated_name for a in node.names if (source, a.evaluated_name) != ignore]
        found.update([source] if aliases else [])
        found.update(f"{source}.{a}" for a in aliases)
    return found


def _refuse_cycle(src: Source, dest: Dest, needs: Needs, old_tree: cst.Module) -> None:
    """Refuse when the old module (as rewritten) and the new one would import each other."""
    old_needs_new = dest.module in _runtime_imports(old_tree, src.module, src.is_package)
    new_needs_old = bool(needs.from_old) or src.module in _runtime_imports(
        dest.tree, dest.module, dest.is_package, (src.module, src.name))
    if not (old_needs_new and new_needs_old):
        return
    why = (f"{src.module} still uses {src.name} at {src.path}:"
           + ",".join(map(str, needs.remaining_lines[:5])) if needs.remaining_lines
           else f"{src.module} imports {dest.module} at import time")
    deps = ", ".join(needs.from_old) or f"{src.module} (already imported there)"
    raise OperationError(
        f"cannot move {src.name} to {dest.module}: it would create an import cycle; {why}, "
        f"and {dest.module} would need {deps} from {src.module}",
        hint=f"move those dependencies first, or the code in {src.path} that uses {src.name}; "
             + NOTHING)


def _refuse_new_cycle(project: Project, src: Source, dest: Dest,
                      after: dict[str, tuple[cst.Module, bool]]) -> None:
    """Refuse when the move's new imports close a loop through any modules of the repository."""
    before = {m: project.parse(rel) for m in after
              if m != dest.module and (rel := project.path_of(m)) is not None}
    if dest.exists:
        before[dest.module] = dest.tree
    cycle = new_cycle(project, after, before)
    if cycle is None:
        return
    raise OperationError(
        f"cannot move {src.name} to {dest.module}: it would create an import cycle at import "
        f"time: {' -> '.join(cycle)}",
        hint="pick a module outside that loop, or break the loop first; " + NOTHING)
