"""Phase 4, operation move_symbol: move a module-level function or class to another module.

Supported: module-level `def` and `class` (decorators, attached comments and docstring move
with it). Refused: methods, nested or conditional definitions, module-level variables (importers
would get a copy of the value, not the variable), a name the destination already binds,
dynamic access by name, and moves that would create an import cycle at import time (the old
module still uses the symbol while the moved code needs names from the old module, or any new
import closes a loop through other modules, e.g. a package `__init__` that imports the
destination). Nothing is written before every check has passed.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import replace
from pathlib import PurePosixPath

import libcst as cst
from libcst.helpers import get_full_name_for_node
from libcst.metadata import MetadataWrapper, PositionProvider

from diffusellm.errors import OperationError
from diffusellm.pipeline.operations.move.build import (
    Dest,
    add_typing_block,
    all_names,
    append_definition,
    bindings,
    check_binding,
    edit_all,
    prune_imports,
    remove_statement,
    start_module,
)
from diffusellm.pipeline.operations.move.cycles import import_time_nodes, new_cycle
from diffusellm.pipeline.operations.move.deps import Needs, Source, analyse, is_type_checking_block
from diffusellm.pipeline.operations.move.imports import ImportSpec
from diffusellm.pipeline.operations.move.place import Importer, add_imports
from diffusellm.pipeline.operations.move.refs import (
    FileRewrite,
    MoveNames,
    names_taken,
    rewrite_file,
    scan_file,
)
from diffusellm.pipeline.operations.refs.declared import refuse_declared
from diffusellm.pipeline.project import Project, Target, resolve_relative, resolve_target
from diffusellm.pipeline.spec import MoveSymbol

_NOTHING = "nothing was changed"


def apply_move(project: Project, op: MoveSymbol) -> None:
    """Move `op.target` to `op.to_module`, rewrite importers; if unsafe refuse, writing nothing."""
    try:
        target = resolve_target(project, op.target)
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
    needs = analyse(src, dest.module, _prefers_relative(dest, src))
    importers, taken = _rewrite_importers(project, names, src, dest, needs.used_imports)
    reexport = src.is_package and src.name in all_names(src.tree)
    old_tree = _build_old(src, dest, needs, taken, reexport)
    _refuse_cycle(src, dest, needs, old_tree)
    new_tree = _build_new(src, dest, needs)
    _refuse_new_cycle(project, src, dest, {**{
        project.module_of(rel): (r.tree, rel.endswith("__init__.py"))
        for rel, r in importers.items() if r.changed}, src.module: (old_tree, src.is_package),
        dest.module: (new_tree, dest.is_package)})
    changes = {rel: r.tree.code for rel, r in importers.items() if r.changed}
    changes.update({init: "" for init in dest.new_inits})
    changes[dest.path] = new_tree.code
    changes[src.path] = old_tree.code
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
    if project.path_of(target.module) and f"{target.path[:-3]}.pyi" in project.files:
        raise OperationError(f"cannot move {target.qualname}: {target.path} has a .pyi stub",
                             hint="update the stub by hand first")
    tree = project.parse(target.path)
    name = target.qualname.rpartition(".")[2]
    hits = [i for i, s in enumerate(tree.body)
            if isinstance(s, cst.FunctionDef | cst.ClassDef) and s.name.value == name]
    if len(hits) != 1:
        raise OperationError(f"cannot move {target.qualname}: it is defined conditionally "
                             f"(inside an if block) in {target.path}",
                             hint="move conditional definitions by hand")
    return Source(target.module, target.path, target.path.endswith("__init__.py"), tree,
                  hits[0], name)


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
                         hint="rename one of the two first; " + _NOTHING)


def _prefers_relative(dest: Dest, src: Source) -> bool:
    for tree, module in ((dest.tree, dest.module), (src.tree, src.module)):
        for stmt in tree.body:
            smalls = stmt.body if isinstance(stmt, cst.SimpleStatementLine) else ()
            for small in smalls:
                if isinstance(small, cst.ImportFrom) and small.relative:
                    return True
                if isinstance(small, cst.ImportFrom | cst.Import) and _same_top(small, module):
                    return False
    return False


def _same_top(node: cst.Import | cst.ImportFrom, module: str) -> bool:
    top = module.split(".")[0]
    if isinstance(node, cst.Import):
        return any(a.evaluated_name.split(".")[0] == top for a in node.names)
    return resolve_relative(module, False, node).split(".")[0] == top


def _rewrite_importers(project: Project, names: MoveNames, src: Source, dest: Dest,
                       candidates: set[str]) -> tuple[dict[str, FileRewrite], set[str]]:
    """Rewrite files that mention the symbol; also collect which `candidates` others take from
    the old module (a cheap syntactic pass for files that do not mention the symbol)."""
    project.mentions_undecodable(re.compile(rb"\b" + re.escape(names.name.encode("utf-8")) + rb"\b"))
    refusals = scan_file(src.tree, names, dest.ctx(src.path, src.module, src.is_package, "old")
                         ).refusals  # the old module reaching itself by name, e.g. via importlib
    results: dict[str, FileRewrite] = {}
    taken: set[str] = set()
    old_last = names.old.rpartition(".")[2]
    for rel in project.python_files():
        text = project.read(rel) if rel not in (src.path, dest.path) else ""
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
            hint="change those places to import the symbol normally first; " + _NOTHING)
    return results, taken


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
             + _NOTHING)


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
        hint="pick a module outside that loop, or break the loop first; " + _NOTHING)


def _build_old(src: Source, dest: Dest, needs: Needs, taken: set[str],
               reexport: bool) -> cst.Module:
    tree, _ = remove_statement(src)
    exported = all_names(tree)
    if src.name in exported and not reexport:
        tree = edit_all(tree, src.name, add=False)
    if needs.remaining_lines or reexport:
        back = ImportSpec(dest.module, src.name, None, _prefers_relative(dest, src))
        tree = add_imports(tree, [back], Importer(src.module, src.is_package, dest.first_party))
    if not src.is_package:
        blocks = sum(1 for s in tree.body if is_type_checking_block(s))
        tree = prune_imports(tree, needs.used_imports, taken | exported)
        if sum(1 for s in tree.body if is_type_checking_block(s)) < blocks:
            tree = prune_imports(tree, {needs.guard_test.split(".")[0]}, taken | exported)
    names = MoveNames(src.module, dest.module, src.name)
    return rewrite_file(tree, names, dest.ctx(src.path, src.module, src.is_package, "old")).tree


def _build_new(src: Source, dest: Dest, needs: Needs) -> cst.Module:
    _, stmt = remove_statement(src)
    tree = dest.tree if dest.exists else start_module(src, needs.futures)
    lazy = "annotations" in needs.futures
    if dest.exists and needs.typing and lazy and "annotations" not in _futures(tree):
        raise OperationError(
            f"cannot move {src.name} into {dest.module}: its annotations use names that "
            f"{src.module} imports only for type checking, and {dest.path} lacks "
            "`from __future__ import annotations`",
            hint=f"add that import to {dest.path} first; " + _NOTHING)
    new = bindings(tree, dest.module, dest.is_package)
    new.pop(src.name, None)
    runtime = [s for s in needs.runtime if check_binding(new, s, dest)]
    typing = [s for s in needs.typing if check_binding(new, s, dest)]
    has_block = any(is_type_checking_block(s) for s in tree.body)
    guard = needs.guard
    if typing and not has_block and isinstance(guard, ImportSpec):
        runtime.extend([guard] if check_binding(new, guard, dest) else [])
    tree = add_imports(tree, runtime, Importer(dest.module, dest.is_package, dest.first_party))
    tree = add_typing_block(tree, typing, needs, dest)
    tree = edit_all(append_definition(tree, stmt), src.name, add=True)
    names = MoveNames(src.module, dest.module, src.name)
    result = rewrite_file(tree, names, dest.ctx(dest.path, dest.module, dest.is_package, "new"))
    if result.refusals:
        raise OperationError(result.refusals[0], hint=f"fix that in {dest.path} first; "
                             + _NOTHING)
    return result.tree


def _futures(tree: cst.Module) -> set[str]:
    return {a.evaluated_name for stmt in tree.body if isinstance(stmt, cst.SimpleStatementLine)
            for small in stmt.body if isinstance(small, cst.ImportFrom) and small.module is not None
            and get_full_name_for_node(small.module) == "__future__"
            and not isinstance(small.names, cst.ImportStar) for a in small.names}
