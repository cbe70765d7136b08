"""Phase 4, move_symbol support: a moved definition's `.pyi` stub moves with it.

A module with a stub beside it (`more.py` and `more.pyi`) is typed by the stub alone, so the
definition's signatures (an `@overload` set included) leave the old stub and join the new
module's stub, created when the new module is, with the imports and names they use. A move
that would leave the destination without the types, or type a name its source never declared,
is refused: the old module has a stub and the destination is an existing module without one,
or the destination has a stub and the old module has none to take the signatures from.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from diffusellm.errors import OperationError
from diffusellm.pipeline.operations.move.assemble import NOTHING, build_new, build_old
from diffusellm.pipeline.operations.move.build import Dest
from diffusellm.pipeline.operations.move.deps import Source, analyse, definition_indices
from diffusellm.pipeline.project import Project


@dataclass(frozen=True)
class StubMove:
    """The old module's stub with the definition's signatures, and the stub they join."""

    src: Source
    dest: Dest


def stub_path(path: str) -> str:
    """The stub beside a module: `pkg/mod.py` → `pkg/mod.pyi`."""
    return path[:-3] + ".pyi"


def _declares(tree: cst.Module, name: str) -> bool:
    return any(isinstance(s, cst.FunctionDef | cst.ClassDef) and s.name.value == name
               for s in tree.body)


def stub_move(project: Project, src: Source, dest: Dest) -> StubMove | None:
    """The stub half of a move, or None when neither module has a stub (or the old stub does not
    declare the name, so there is nothing to carry); refuse a move that would lose the types."""
    old, new = stub_path(src.path), stub_path(dest.path)
    has_old, has_new = old in project.files, dest.exists and new in project.files
    if not has_old:
        if has_new:
            raise OperationError(
                f"cannot move {src.name} into {dest.module}: {new} types that module, and "
                f"{src.path} has no stub to take {src.name}'s signature from",
                hint=f"declare {src.name} in {new} after moving it by hand; " + NOTHING)
        return None
    tree = project.parse(old)
    if not _declares(tree, src.name):
        return None
    if dest.exists and not has_new:
        raise OperationError(
            f"cannot move {src.name} into {dest.module}: {old} declares its types, and "
            f"{dest.module} has no stub ({new}) to take them",
            hint=f"create {new} first, or move {src.name} to a new module; " + NOTHING)
    stub = Source(src.module, old, src.is_package, tree,
                  definition_indices(tree, src.name, old), src.name)
    target = Dest(dest.module, new, dest.is_package,
                  project.parse(new) if has_new else cst.Module(body=[]), has_new, (),
                  dest.first_party)
    return StubMove(stub, target)


def stub_changes(move: StubMove, relative: bool, reexport: bool) -> dict[str, str]:
    """The two stubs' new text (path → text)."""
    needs = analyse(move.src, move.dest.module, relative)
    old = build_old(move.src, move.dest, needs, set(), reexport, relative)
    new = build_new(move.src, move.dest, needs)
    return {move.src.path: old.code, move.dest.path: new.code}
