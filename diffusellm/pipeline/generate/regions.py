"""Phase 5 error mapping: where generated functions landed, and which of their lines the checks blame.

Ruff and pyright report `path:line: CODE message`; a line inside a generated function becomes a
line of that function (1-based from its first line, decorators included). A failing pytest node
in a generated test blames the whole test; any other failing test blames every edited function,
since a test cannot say which line broke it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from diffusellm.errors import OperationError
from diffusellm.pipeline.operations.generative.source import parse_function_source
from diffusellm.pipeline.project import Project, resolve_target
from diffusellm.pipeline.spec import AddTest, EditFunction, GenerativeOperation, Operation
from diffusellm.pipeline.validate.report import ValidationReport

_LOCATED = re.compile(r"^(?P<path>[^:\s][^:]*):(?P<line>\d+): (?P<rest>.*)$")
WHOLE = 0
"""Stands for "every line of the function" in a blame."""


@dataclass(frozen=True)
class WrittenFunction:
    """A generated function as it stands in the work copy after formatting."""

    path: str
    start: int
    end: int
    text: str
    test_id: str = ""
    """`path::name` for a generated test."""


@dataclass
class Blame:
    """Failures traced to generated functions (op index → lines, messages) and the rest."""

    lines: dict[int, set[int]] = field(default_factory=lambda: {})
    messages: dict[int, list[str]] = field(default_factory=lambda: {})
    unmapped: list[str] = field(default_factory=lambda: [])

    def add(self, index: int, line: int, message: str) -> None:
        """Blame `line` (or WHOLE) of the function of operation `index`."""
        self.lines.setdefault(index, set()).add(line)
        self.messages.setdefault(index, []).append(message)


def _span(project: Project, path: str, names: Sequence[str]) -> WrittenFunction | None:
    """Lines and text of the function `names` (Class, method) in `path`."""
    wrapper = MetadataWrapper(project.parse(path), unsafe_skip_copy=True)
    positions = wrapper.resolve(PositionProvider)
    scope: cst.CSTNode = wrapper.module
    node: cst.CSTNode | None = None
    for name in names:
        node = _child_def(scope, name)
        if node is None:
            return None
        scope = node
    if not isinstance(node, cst.FunctionDef):
        return None
    start = positions[node.decorators[0] if node.decorators else node].start.line
    end = positions[node].end.line
    lines = project.read(path).splitlines(keepends=True)
    return WrittenFunction(path, start, end, "".join(lines[start - 1 : end]))


def _child_def(scope: cst.CSTNode, name: str) -> cst.CSTNode | None:
    body = getattr(scope, "body", None)
    statements = getattr(body, "body", body)
    for stmt in statements if isinstance(statements, list | tuple) else ():  # pyright: ignore[reportUnknownVariableType]
        if isinstance(stmt, cst.FunctionDef | cst.ClassDef) and stmt.name.value == name:
            return stmt
    return None


def written_function(project: Project, op: GenerativeOperation) -> WrittenFunction | None:
    """Where a generative operation's function now stands; None when it cannot be found."""
    try:
        if isinstance(op, AddTest):
            if op.source is None:
                return None
            name = parse_function_source(op.source, "test")[1].name.value
            found = _span(project, op.path, [name])
            return replace(found, test_id=f"{op.path}::{name}") if found else None
        target = resolve_target(project, op.target)
        return _span(project, target.path, target.names)
    except OperationError:
        return None


def written_functions(project: Project, operations: Sequence[Operation]) -> dict[int, WrittenFunction]:
    """For each generative operation (by index), where its function now stands."""
    found: dict[int, WrittenFunction] = {}
    for index, op in enumerate(operations):
        if isinstance(op, GenerativeOperation):
            where = written_function(project, op)
            if where is not None:
                found[index] = where
    return found


def blame(report: ValidationReport, written: Mapping[int, WrittenFunction], operations: Sequence[Operation]) -> Blame:
    """Trace every new failure of a validation to a generated function and its lines."""
    result = Blame()
    edited = [i for i in written if isinstance(operations[i], EditFunction)]
    for check in report.checks:
        for failure in check.new_failures:
            if check.name in ("ruff", "pyright"):
                _blame_located(result, failure, written)
            else:
                _blame_test(result, failure, written, edited)
    return result


def _blame_located(result: Blame, failure: str, written: Mapping[int, WrittenFunction]) -> None:
    match = _LOCATED.match(failure)
    if match:
        path, line = match.group("path"), int(match.group("line"))
        for index, where in written.items():
            if where.path == path and where.start <= line <= where.end:
                result.add(index, line - where.start + 1, f"line {line - where.start + 1}: {match.group('rest')}")
                return
    result.unmapped.append(failure)


def _blame_test(result: Blame, failure: str, written: Mapping[int, WrittenFunction], edited: Sequence[int]) -> None:
    node_id = failure.split(" - ", 1)[0]
    owner = next((i for i, w in written.items() if w.test_id and _same_test(node_id, w.test_id)), None)
    if owner is not None:
        result.add(owner, WHOLE, failure)
        return
    if not edited:
        result.unmapped.append(failure)
    for index in edited:
        result.add(index, WHOLE, failure)


def _same_test(node_id: str, test_id: str) -> bool:
    """A failure of the test itself (parametrised ids included) or of its whole file."""
    return node_id.startswith(test_id) or test_id.startswith(node_id + "::")
