"""Phase 4/5 generative operations: edit_function, add_function, add_test as whole-function LibCST edits."""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from diffusellm.errors import OperationError
from diffusellm.pipeline.operations.generative.source import (
    body_fingerprint,
    checks_something,
    merge_imports,
    names_used,
    parse_body,
    parse_function_source,
    same_signature,
    signature_of,
    with_body,
)
from diffusellm.pipeline.paths import is_plain_file
from diffusellm.pipeline.project import Project, Target, resolve_target
from diffusellm.pipeline.spec import AddFunction, AddTest, EditFunction
from diffusellm.pipeline.understand.trie import SignatureTrie

SAME_NAME_AND_SIGNATURE = 0.999
"""Trie score of the same signature with the same words in the name: the function exists."""
WORTH_A_WARNING = 0.64
"""From here (the same signature, or one parameter off with half the name's words shared) a
similar function is named in a warning; see `SignatureTrie.similar` for the scores."""


@dataclass
class GenerativeContext:
    """What generative operations consult besides the files: the signature trie, and warnings out."""

    trie: SignatureTrie | None = None
    warnings: list[str] = field(default_factory=lambda: [])


def _body_of(scope: cst.CSTNode) -> list[cst.BaseStatement]:
    body = getattr(scope, "body", None)
    inner = getattr(body, "body", body)
    return list(inner) if isinstance(inner, list | tuple) else []  # pyright: ignore[reportUnknownArgumentType]


def _child(scope: cst.CSTNode, name: str) -> cst.CSTNode | None:
    for stmt in _body_of(scope):
        if isinstance(stmt, cst.FunctionDef | cst.ClassDef) and stmt.name.value == name:
            return stmt
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                if isinstance(small, cst.Assign | cst.AnnAssign) and name in _assigned(small):
                    return stmt
    return None


def _assigned(node: cst.Assign | cst.AnnAssign) -> set[str]:
    targets = [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
    return {t.value for t in targets if isinstance(t, cst.Name)}


def _node_at(tree: cst.Module, names: tuple[str, ...]) -> cst.CSTNode | None:
    scope: cst.CSTNode | None = tree
    for name in names:
        scope = _child(scope, name) if scope is not None else None
    return scope


def _function(project: Project, qualname: str) -> tuple[Target, cst.Module, cst.FunctionDef]:
    target = resolve_target(project, qualname)
    if target.kind not in ("function", "method"):
        raise OperationError(
            f"{qualname} is a {target.kind}, not a function or method",
            hint="edit_function replaces functions and methods only",
        )
    tree = project.parse(target.path)
    node = _node_at(tree, target.names)
    if not isinstance(node, cst.FunctionDef):
        raise OperationError(f"cannot find the definition of {qualname} in {target.path}")
    return target, tree, node


def apply_edit_function(project: Project, op: EditFunction) -> None:
    """Replace the target's definition (or only its body) with the operation's code."""
    if op.needs_code:
        raise OperationError(
            f"edit_function {op.target} has no code yet",
            hint="give `source` or `body`, or run with a language model configured",
        )
    target, tree, old = _function(project, op.target)
    imports: list[cst.SimpleStatementLine] = []
    source_module = tree
    if op.body is not None:
        new = with_body(old, parse_body(op.body))
    else:
        assert op.source is not None
        imports, new = parse_function_source(op.source, f"the new definition of {op.target}")
        source_module = cst.parse_module(op.source.strip() + "\n")
        if not op.signature_may_change and not same_signature(tree, old, source_module, new):
            raise OperationError(
                f"the new definition changes the signature of {op.target} from "
                f"{signature_of(tree, old)} to {signature_of(source_module, new)}",
                hint="keep the signature, or set signature_may_change: true (callers are not updated)",
            )
    new = new.with_changes(leading_lines=old.leading_lines)
    updated = tree.deep_replace(old, new)
    assert isinstance(updated, cst.Module)
    project.write(target.path, merge_imports(updated, imports, source_module).code)


def _split_new(project: Project, qualname: str) -> tuple[str, str, tuple[str, ...], str]:
    """(module, path, enclosing class names, new name) for a function that does not exist yet."""
    parts = qualname.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module = ".".join(parts[:cut])
        path = project.path_of(module)
        if path is not None:
            return module, path, tuple(parts[cut:-1]), parts[-1]
    raise OperationError(
        f"add_function target {qualname!r} names no existing module of this repository",
        hint="use the dotted path of an existing module followed by the new name",
    )


def apply_add_function(project: Project, op: AddFunction, context: GenerativeContext) -> None:
    """Add a new function to a module or class; refuse when the name or an equal function exists."""
    if op.source is None:
        raise OperationError(
            f"add_function {op.target} has no code yet",
            hint="give `source`, or run with a language model configured",
        )
    module, path, classes, name = _split_new(project, op.target)
    tree = project.parse(path)
    scope = _node_at(tree, classes) if classes else tree
    if not isinstance(scope, cst.Module | cst.ClassDef):
        raise OperationError(f"{module} has no class {'.'.join(classes)} to add {name} to")
    if _child(scope, name) is not None:
        raise OperationError(
            f"{module}.{'.'.join((*classes, name))} already exists",
            hint="use edit_function to change it, or choose another name",
        )
    imports, func = parse_function_source(op.source, f"the new function {op.target}")
    source_module = cst.parse_module(op.source.strip() + "\n")
    if not op.allow_similar:
        _refuse_duplicates(project, context, op.target, signature_of(source_module, func), op.source)
    blank = [cst.EmptyLine(indent=False)] * (1 if classes else 2)
    updated = _append(tree, scope, func.with_changes(leading_lines=blank))
    project.write(path, merge_imports(updated, imports, source_module).code)


def _append(tree: cst.Module, scope: cst.Module | cst.ClassDef, func: cst.FunctionDef) -> cst.Module:
    if isinstance(scope, cst.ClassDef):
        block = scope.body
        assert isinstance(block, cst.IndentedBlock)
        new_scope = scope.with_changes(body=block.with_changes(body=[*block.body, func]))
        replaced = tree.deep_replace(scope, new_scope)
        assert isinstance(replaced, cst.Module)
        return replaced
    body = list(tree.body)
    at = len(body)
    if body and _is_main_guard(body[-1]):
        at -= 1  # keep `if __name__ == "__main__":` last
    return tree.with_changes(body=[*body[:at], func, *body[at:]])


def _is_main_guard(stmt: cst.BaseStatement) -> bool:
    if not isinstance(stmt, cst.If) or not isinstance(stmt.test, cst.Comparison):
        return False
    left = stmt.test.left
    return isinstance(left, cst.Name) and left.value == "__name__"


def _refuse_duplicates(
    project: Project, context: GenerativeContext, qualname: str, signature: str, source: str
) -> None:
    """Refuse a function that already exists under another name; warn about close ones."""
    if context.trie is None:
        return
    name = qualname.rsplit(".", 1)[-1]
    fingerprint = body_fingerprint(source)
    for other, score in context.trie.similar(signature, name):
        if fingerprint is not None and fingerprint == _fingerprint_of(project, other):
            raise OperationError(
                f"{qualname} would duplicate {other}: same signature and the same body",
                hint=f"reuse {other} instead of adding a copy",
            )
        if score >= SAME_NAME_AND_SIGNATURE:
            raise OperationError(
                f"{qualname} would duplicate {other}: same signature and the same name words",
                hint=f"reuse or edit {other}; set allow_similar: true to add it anyway",
            )
        if score >= WORTH_A_WARNING:
            context.warnings.append(
                f"{qualname} is close to the existing {other} (similarity {score:.2f}); "
                "check whether it could be reused"
            )


def _fingerprint_of(project: Project, qualname: str) -> str | None:
    try:
        _, tree, node = _function(project, qualname)
    except OperationError:
        return None
    return body_fingerprint(tree.code_for_node(node))


def apply_add_test(project: Project, op: AddTest) -> None:
    """Add a test function to a test file, creating the file and importing the target as needed."""
    if op.source is None:
        raise OperationError(
            f"add_test for {op.target} has no code yet",
            hint="give `source`, or run with a language model configured",
        )
    project.refuse_link(op.path)
    target = resolve_target(project, op.target)
    imports, func = parse_function_source(op.source, f"the new test for {op.target}")
    source_module = cst.parse_module(op.source.strip() + "\n")
    if not checks_something(source_module.code_for_node(func)):
        raise OperationError(
            f"the new test {func.name.value} for {op.target} asserts nothing (its body is only "
            "`pass`, `...`, a docstring or plain assignments)",
            hint="give the test an assert (or pytest.raises) on the behaviour it covers",
        )
    exists = op.path in project.python_files() or is_plain_file(project.root, op.path)
    tree = project.parse(op.path) if exists else cst.Module(body=())
    if _child(tree, func.name.value) is not None:
        raise OperationError(
            f"{op.path} already defines {func.name.value}",
            hint="give the new test another name",
        )
    imports = [*imports, *_target_import(target, tree, func, source_module)]
    lead = [cst.EmptyLine(indent=False)] * 2 if tree.body or imports else []
    body = [*tree.body, func.with_changes(leading_lines=lead)]
    updated = merge_imports(tree.with_changes(body=body), imports, source_module)
    project.write(op.path, updated.code)


def _target_import(
    target: Target, tree: cst.Module, func: cst.FunctionDef, source: cst.Module
) -> list[cst.SimpleStatementLine]:
    """`from module import name` for the test's target, when the test uses it and lacks it."""
    name = target.names[0]
    if name not in names_used(func, source) or _child(tree, name) is not None:
        return []
    if name in _imported_names(tree) or name in _imported_names(source):
        return []
    line = cst.parse_statement(f"from {target.module} import {name}\n")
    assert isinstance(line, cst.SimpleStatementLine)
    return [line]


def _imported_names(tree: cst.Module) -> set[str]:
    """Names the module's top-level imports bind."""
    bound: set[str] = set()
    for stmt in tree.body:
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        for small in stmt.body:
            if isinstance(small, cst.Import | cst.ImportFrom) and not isinstance(small.names, cst.ImportStar):
                for alias in small.names:
                    bound.add(tree.code_for_node(alias.asname.name if alias.asname else alias.name))
    return bound
