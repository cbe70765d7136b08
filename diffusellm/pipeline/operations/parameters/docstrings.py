"""Keep a function's docstring in step with its signature: add or drop a parameter's entry (Google, NumPy, reST)."""

from __future__ import annotations

import re

import libcst as cst

_GOOGLE = re.compile(r"^(\s*)(Args|Arguments|Parameters|Keyword Args|Keyword Arguments):\s*$")
_NUMPY_RULE = re.compile(r"^\s*-{3,}\s*$")
_REST = re.compile(r"^(\s*):(param|type)\s+(?:\S+\s+)?(\w+):")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _docstring_node(function: cst.FunctionDef) -> cst.SimpleString | None:
    body = function.body
    if not isinstance(body, cst.IndentedBlock) or not body.body:
        return None
    first = body.body[0]
    if isinstance(first, cst.SimpleStatementLine) and len(first.body) == 1:
        expr = first.body[0]
        if isinstance(expr, cst.Expr) and isinstance(expr.value, cst.SimpleString):
            return expr.value
    return None


def _block_end(lines: list[str], start: int, floor: int) -> int:
    """Index after the last non-blank line indented deeper than `floor`, from `start`."""
    end = start
    for i in range(start, len(lines)):
        if not lines[i].strip():
            continue
        if _indent(lines[i]) <= floor:
            break
        end = i + 1
    return end


def _google_add(lines: list[str], entry: str) -> list[str] | None:
    for i, line in enumerate(lines):
        match = _GOOGLE.match(line)
        if match and match.group(2) in ("Args", "Arguments", "Parameters"):
            end = _block_end(lines, i + 1, _indent(line))
            if end == i + 1:
                return None
            pad = " " * _indent(lines[i + 1])
            return [*lines[:end], pad + entry, *lines[end:]]
    return None


def _numpy_section(lines: list[str]) -> tuple[int, int] | None:
    """(first entry index, end index) of a NumPy `Parameters` section."""
    for i in range(len(lines) - 1):
        if lines[i].strip() == "Parameters" and _NUMPY_RULE.match(lines[i + 1]):
            floor = _indent(lines[i])
            end = i + 2
            for j in range(i + 2, len(lines)):
                nxt = lines[j + 1] if j + 1 < len(lines) else ""
                if lines[j].strip() and _indent(lines[j]) == floor and _NUMPY_RULE.match(nxt):
                    break
                if lines[j].strip() and _indent(lines[j]) < floor:
                    break
                if lines[j].strip():
                    end = j + 1
            return i + 2, end
    return None


def _rest_last(lines: list[str]) -> int | None:
    last = None
    for i, line in enumerate(lines):
        if _REST.match(line):
            last = _block_end(lines, i + 1, _indent(line))
    return last


def add_entry(text: str, name: str, annotation: str | None, description: str) -> str:
    """Docstring text with an entry for `name` in its parameter section; unchanged when it has none."""
    lines = text.split("\n")
    google = _google_add(lines, f"{name}: {description}")
    if google is not None:
        return "\n".join(google)
    section = _numpy_section(lines)
    if section is not None and section[1] > section[0]:
        start, end = section
        pad = " " * _indent(lines[start])
        kind = f"{annotation}, optional" if annotation else "optional"
        return "\n".join(
            [*lines[:end], f"{pad}{name} : {kind}", f"{pad}    {description}", *lines[end:]]
        )
    last = _rest_last(lines)
    if last is not None:
        pad = " " * _indent(next(line for line in lines if _REST.match(line)))
        return "\n".join([*lines[:last], f"{pad}:param {name}: {description}", *lines[last:]])
    return text


def _param_ranges(lines: list[str]) -> list[range]:
    """Line ranges that hold parameter entries: Google Args blocks and the NumPy Parameters section."""
    ranges: list[range] = []
    for i, line in enumerate(lines):
        if _GOOGLE.match(line):
            ranges.append(range(i + 1, _block_end(lines, i + 1, _indent(line))))
    section = _numpy_section(lines)
    if section is not None:
        ranges.append(range(*section))
    return ranges


def drop_entry(text: str, name: str) -> str:
    """Docstring text without the entry (and continuation lines) describing parameter `name`."""
    lines = text.split("\n")
    section_entry = re.compile(rf"^\s*\*{{0,2}}{re.escape(name)}\s*(\([^)]*\))?\s*:(?!:)")
    rest_entry = re.compile(rf"^\s*:(param|type)\s+(\S+\s+)?{re.escape(name)}:")
    ranges = _param_ranges(lines)
    out: list[str] = []
    i = 0
    while i < len(lines):
        in_section = any(i in r for r in ranges)
        if rest_entry.match(lines[i]) or (in_section and section_entry.match(lines[i])):
            i = max(_block_end(lines, i + 1, _indent(lines[i])), i + 1)
            continue
        out.append(lines[i])
        i += 1
    return "\n".join(out)


def _replace(function: cst.FunctionDef, node: cst.SimpleString, value: str) -> cst.FunctionDef:
    if value == node.value:
        return function
    replaced = function.deep_replace(node, node.with_changes(value=value))
    assert isinstance(replaced, cst.FunctionDef)
    return replaced


def document_parameter(
    function: cst.FunctionDef, name: str, annotation: str | None, description: str
) -> cst.FunctionDef:
    """The function with its docstring's parameter section describing the new parameter."""
    node = _docstring_node(function)
    return (
        function
        if node is None
        else _replace(function, node, add_entry(node.value, name, annotation, description))
    )


def undocument_parameter(function: cst.FunctionDef, name: str) -> cst.FunctionDef:
    """The function with the removed parameter's docstring entry dropped."""
    node = _docstring_node(function)
    return function if node is None else _replace(function, node, drop_entry(node.value, name))
