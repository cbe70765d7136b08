"""Phase 6 finding keys: a linter finding is keyed by the qualified name of the definition that
encloses it, so it follows its code through moves and renames instead of staying with a path."""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from diffusellm.pipeline.project import module_name_for
from diffusellm.pipeline.validate.findings import Finding
from diffusellm.pipeline.validate.outputs import OutputRefusedError, read_output


def keyed_by_symbol(findings: Sequence[Finding], root: Path) -> list[Finding]:
    """Each finding with a path and row re-keyed as (tool, enclosing qualname, code, message)."""
    spans: dict[str, list[tuple[int, int, str]]] = {}
    keyed: list[Finding] = []
    for finding in findings:
        if not finding.path or finding.row <= 0 or len(finding.key) != 4:
            keyed.append(finding)
            continue
        if finding.path not in spans:
            spans[finding.path] = _definitions(root, finding.path)
        qualname = _enclosing(spans[finding.path], finding.row) or module_name_for(root, finding.path)
        tool, _path, code, message = finding.key
        keyed.append(replace(finding, key=(tool, qualname, code, message)))
    return keyed


def moved_back(key: tuple[str, ...], moves: Mapping[str, str]) -> list[tuple[str, ...]]:
    """The keys the base commit may know a finding by, likeliest first.

    A finding inside a moved definition: its new qualname → its old one. A finding at module
    level of a destination module (an import line the move carried over): as it stands, or as
    a module-level finding of the module the definition came from."""
    if len(key) != 4 or not moves:
        return [key]
    qualname = key[1]
    for new, old in moves.items():
        if qualname == new or qualname.startswith(new + "."):
            return [(key[0], old + qualname[len(new):], *key[2:])]
    sources = [old.rpartition(".")[0] for new, old in moves.items() if new.rpartition(".")[0] == qualname]
    return [key, *((key[0], source, *key[2:]) for source in sources)]


def _definitions(root: Path, rel: str) -> list[tuple[int, int, str]]:
    """(first line, last line, qualname) of every def and class in a file; empty if unreadable."""
    try:
        tree = ast.parse(read_output(root, rel))
    except (OutputRefusedError, SyntaxError, ValueError):
        return []
    module = module_name_for(root, rel)
    found: list[tuple[int, int, str]] = []

    def walk(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}.{node.name}"
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                found.append((first, node.end_lineno or node.lineno, name))
                walk(node.body, name)

    walk(tree.body, module)
    return found


def _enclosing(spans: list[tuple[int, int, str]], row: int) -> str | None:
    """The innermost definition whose lines hold `row`."""
    inside = [(end - start, name) for start, end, name in spans if start <= row <= end]
    return min(inside)[1] if inside else None
