"""Phase 4/5 code surgery: read generated function source and place it with LibCST (no text patches)."""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Sequence

import libcst as cst

from diffusellm.errors import OperationError

ImportLine = cst.SimpleStatementLine


def parse_function_source(source: str, what: str) -> tuple[list[ImportLine], cst.FunctionDef]:
    """The leading import lines and the one function definition of generated `source`."""
    try:
        module = cst.parse_module(textwrap.dedent(source).strip("\n") + "\n")
    except cst.ParserSyntaxError as exc:
        raise OperationError(
            f"{what} is not valid Python (line {exc.raw_line}: {exc.message})",
            hint="give the whole definition, starting with `def`",
        ) from None
    imports: list[ImportLine] = []
    funcs: list[cst.FunctionDef] = []
    for stmt in module.body:
        if isinstance(stmt, cst.FunctionDef):
            funcs.append(stmt)
        elif _is_import_line(stmt):
            assert isinstance(stmt, cst.SimpleStatementLine)
            imports.append(stmt)
        else:
            funcs.clear()
            break
    if len(funcs) != 1:
        raise OperationError(
            f"{what} must hold exactly one function definition, optionally after imports",
            hint="leave classes, constants and other statements out of generated code",
        )
    return imports, funcs[0].with_changes(leading_lines=())


def parse_body(body: str) -> cst.BaseSuite:
    """A function body given on its own, as a LibCST block."""
    text = textwrap.indent(textwrap.dedent(body).strip("\n"), "    ")
    try:
        func = cst.parse_module(f"def _f():\n{text}\n").body[0]
    except cst.ParserSyntaxError as exc:
        raise OperationError(
            f"the new body is not valid Python (line {exc.raw_line - 1}: {exc.message})",
            hint="check the body's indentation and syntax",
        ) from None
    assert isinstance(func, cst.FunctionDef)
    return func.body


def _is_import_line(stmt: cst.CSTNode) -> bool:
    return isinstance(stmt, cst.SimpleStatementLine) and all(
        isinstance(small, cst.Import | cst.ImportFrom) for small in stmt.body
    )


def docstring_statement(func: cst.FunctionDef) -> cst.BaseStatement | None:
    """The docstring statement of a function, when its body starts with one."""
    body = func.body
    if not isinstance(body, cst.IndentedBlock) or not body.body:
        return None
    first = body.body[0]
    if isinstance(first, cst.SimpleStatementLine) and len(first.body) == 1:
        expr = first.body[0]
        if isinstance(expr, cst.Expr) and isinstance(expr.value, cst.SimpleString | cst.ConcatenatedString):
            return first
    return None


def with_body(old: cst.FunctionDef, body: cst.BaseSuite) -> cst.FunctionDef:
    """`old` with a new body; the old docstring stays when the new body brings none."""
    new = old.with_changes(body=body)
    doc = docstring_statement(old)
    if doc is not None and docstring_statement(new) is None and isinstance(body, cst.IndentedBlock):
        new = new.with_changes(body=body.with_changes(body=[doc, *body.body]))
    return new


def signature_of(module: cst.Module, func: cst.FunctionDef) -> str:
    """`(a: int, *, b: str = "x") -> bool` of a function, as code."""
    params = module.code_for_node(func.params)
    returns = f" -> {module.code_for_node(func.returns.annotation)}" if func.returns else ""
    return f"({params}){returns}"


def _signature_dump(module: cst.Module, func: cst.FunctionDef) -> str:
    header = f"{'async ' if func.asynchronous else ''}def f{signature_of(module, func)}: pass"
    decorators = [module.code_for_node(d.decorator) for d in func.decorators]
    node = ast.parse(header).body[0]
    assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    shape = ast.dump(node.args) + ast.dump(node.returns) if node.returns else ast.dump(node.args)
    return f"{type(node).__name__}|{shape}|{decorators}"


def same_signature(old_module: cst.Module, old: cst.FunctionDef, new_module: cst.Module, new: cst.FunctionDef) -> bool:
    """Whether two definitions take the same parameters, return the same type and share decorators."""
    return _signature_dump(old_module, old) == _signature_dump(new_module, new)


def merge_imports(tree: cst.Module, imports: Sequence[ImportLine], source: cst.Module) -> cst.Module:
    """`tree` with the import lines it lacks added after its last top-level import."""
    have = {tree.code_for_node(s).strip() for s in tree.body if _is_import_line(s)}
    missing = [s for s in imports if source.code_for_node(s).strip() not in have]
    if not missing:
        return tree
    body = list(tree.body)
    at = _import_insert_at(body)
    fresh = [s.with_changes(leading_lines=()) for s in missing]
    return tree.with_changes(body=[*body[:at], *fresh, *body[at:]])


def _import_insert_at(body: Sequence[cst.BaseStatement]) -> int:
    """After the last top-level import, else after the module docstring, else at the top."""
    last = max((i for i, s in enumerate(body) if _is_import_line(s)), default=-1)
    if last >= 0:
        return last + 1
    first = body[0] if body else None
    if isinstance(first, cst.SimpleStatementLine) and isinstance(first.body[0], cst.Expr):
        return 1
    return 0


def names_used(func: cst.FunctionDef, module: cst.Module) -> set[str]:
    """Bare names a function's code loads (for deciding which import a new test needs)."""
    tree = ast.parse(textwrap.dedent(module.code_for_node(func)))
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def body_fingerprint(code: str) -> str | None:
    """A function's body as an AST dump, docstring dropped and parameters named by position.

    Two functions with the same fingerprint do the same thing under different names.
    """
    try:
        tree = ast.parse(textwrap.dedent(code))
    except SyntaxError:
        return None
    func = next((n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)), None)
    if func is None:
        return None
    body = func.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    params = [a.arg for a in [*func.args.posonlyargs, *func.args.args, *func.args.kwonlyargs]]
    rename = {name: f"_p{i}" for i, name in enumerate(params)}
    for node in ast.walk(ast.Module(body=body, type_ignores=[])):
        if isinstance(node, ast.Name) and node.id in rename:
            node.id = rename[node.id]
    return "\n".join(ast.dump(stmt) for stmt in body)


def checks_something(code: str) -> bool:
    """True when a test function's code asserts, raises or calls something (a helper, `pytest.raises`,
    `self.assertEqual`): a body of only `pass`, `...`, a docstring or plain assignments checks nothing."""
    try:
        tree = ast.parse(textwrap.dedent(code))
    except SyntaxError:
        return False
    funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    body = funcs[0].body if funcs else tree.body
    return any(
        isinstance(node, ast.Assert | ast.Raise | ast.Call)
        for stmt in body for node in ast.walk(stmt)
    )
