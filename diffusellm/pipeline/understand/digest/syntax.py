"""Digestion helpers: small pure functions over tree-sitter nodes (text, imports, errors)."""

from __future__ import annotations

import re
from functools import lru_cache

from tree_sitter import Language, Node, Parser

_SPACES = re.compile(r"\s+")
_CONSTANT = re.compile(r"_*[A-Z][A-Z0-9_]*")
MAX_TEXT = 200
MAX_SIGNATURE = 2000


@lru_cache(maxsize=1)
def python_parser() -> Parser:
    """The process's tree-sitter parser for Python (built on first use, never at import)."""
    import tree_sitter_python

    return Parser(Language(tree_sitter_python.language()))


def text(node: Node | None) -> str:
    """Source text of a node ('' for None); invalid UTF-8 is replaced rather than raised."""
    if node is None or node.text is None:
        return ""
    return node.text.decode("utf-8", "replace")


def compact(source: str, limit: int = MAX_TEXT) -> str:
    """Collapse whitespace so multi-line signatures read as one line, without stray spaces."""
    flat = _SPACES.sub(" ", source).strip()
    flat = flat.replace("( ", "(").replace(" )", ")").replace("[ ", "[").replace(" ]", "]")
    if flat.endswith(",)"):
        flat = flat[:-2] + ")"
    return flat[:limit]


def is_constant_name(name: str) -> bool:
    """UPPER_CASE names are constants by convention; everything else assigned is a variable."""
    return _CONSTANT.fullmatch(name) is not None


def first_named(node: Node | None) -> Node | None:
    """First named child of a node, or None (tree-sitter raises IndexError on a childless node)."""
    if node is None or node.named_child_count == 0:
        return None
    return node.named_child(0)


def line_of(node: Node) -> int:
    """1-based line where a node starts."""
    return node.start_point[0] + 1


def end_line_of(node: Node) -> int:
    """1-based line where a node ends."""
    return node.end_point[0] + 1


def docstring_of(body: Node | None) -> str:
    """First non-blank line of the docstring opening a module, class or function body."""
    if body is None:
        return ""
    first = first_named(body)
    while first is not None and first.type == "comment":
        first = first.next_named_sibling
    if first is None or first.type != "expression_statement":
        return ""
    string = first_named(first)
    if string is None or string.type != "string":
        return ""
    content = "".join(text(c) for c in string.named_children if c.type == "string_content")
    for line in content.splitlines():
        if line.strip():
            return line.strip()[:MAX_TEXT]
    return ""


def string_literal(node: Node | None) -> str | None:
    """The value of a plain string literal (no interpolation, no escapes), else None."""
    if node is None or node.type != "string":
        return None
    parts = node.named_children
    if any(p.type not in ("string_start", "string_content", "string_end") for p in parts):
        return None
    return "".join(text(p) for p in parts if p.type == "string_content")


def dotted_chain(node: Node) -> list[str] | None:
    """`a.b.c` as ['a', 'b', 'c'] when the expression is a pure name chain, else None."""
    parts: list[str] = []
    current: Node | None = node
    while current is not None and current.type == "attribute":
        parts.append(text(current.child_by_field_name("attribute")))
        current = current.child_by_field_name("object")
    if current is None or current.type != "identifier":
        return None
    parts.append(text(current))
    parts.reverse()
    return parts


def absolute_module(module: str, is_package: bool, dots: int, name: str) -> str:
    """Absolute module of a relative import, as `resolve_relative` in pipeline/project.py does it.

    Too many dots for the package depth leaves the import unresolvable; it is returned as
    written (`..name`) so it never matches a real module.
    """
    if dots == 0:
        return name
    base = module.split(".") if is_package else module.split(".")[:-1]
    if dots - 1 > len(base) or (dots - 1 == len(base) and not name):
        return "." * dots + name
    base = base[: len(base) - (dots - 1)]
    return ".".join([*base, name] if name else base)


def syntax_errors(root: Node, limit: int = 3) -> list[str]:
    """Where tree-sitter had to recover: 'line N: ...' for the first few ERROR or MISSING nodes."""
    found: list[str] = []
    stack = [root]
    while stack and len(found) < limit:
        node = stack.pop()
        if node.is_missing:
            found.append(f"line {line_of(node)}: missing {node.type!r}")
        elif node.is_error:
            snippet = compact(text(node))[:40]
            found.append(f"line {line_of(node)}: invalid syntax near {snippet!r}")
        else:
            stack.extend(reversed([c for c in node.children if c.has_error or c.is_missing]))
    return found or [f"line {line_of(root)}: invalid syntax"]


ImportBinding = tuple[str, str | None, str | None, str, str]
"""(module, name, alias, local, target) as in `parse.Import`."""


def import_bindings(node: Node, module: str, is_package: bool) -> list[ImportBinding]:
    """What an `import` / `from ... import` statement in `module` binds (relative resolved)."""
    if node.type == "import_statement":
        return [_plain_import(item) for item in node.children_by_field_name("name")]
    source = from_module(node.child_by_field_name("module_name"), module, is_package)
    if any(c.type == "wildcard_import" for c in node.named_children):
        return [(source, "*", None, "", f"{source}.*")]
    rows: list[ImportBinding] = []
    for item in node.children_by_field_name("name"):
        aliased = item.type == "aliased_import"
        name = dotted(item.child_by_field_name("name") if aliased else item)
        alias = text(item.child_by_field_name("alias")) if aliased else None
        rows.append((source, name, alias, alias or name, f"{source}.{name}" if source else name))
    return rows


def _plain_import(item: Node) -> ImportBinding:
    """`import a.b as m` binds m to a.b; `import a.b` binds a to a."""
    if item.type == "aliased_import":
        module = dotted(item.child_by_field_name("name"))
        local = text(item.child_by_field_name("alias"))
        return (module, None, local, local, module)
    module = dotted(item)
    top = module.split(".")[0]
    return (module, None, None, top, top)


def from_module(source: Node | None, module: str, is_package: bool) -> str:
    """The absolute module a `from` import reads from."""
    if source is None:
        return ""
    if source.type != "relative_import":
        return dotted(source)
    prefix = next((c for c in source.children if c.type == "import_prefix"), None)
    name = next((c for c in source.named_children if c.type == "dotted_name"), None)
    return absolute_module(module, is_package, text(prefix).count("."), dotted(name))


def dotted(node: Node | None) -> str:
    """`a . b` written with any spacing, as `a.b`."""
    if node is None:
        return ""
    if node.type != "dotted_name":
        return text(node)
    return ".".join(text(c) for c in node.named_children if c.type == "identifier")
