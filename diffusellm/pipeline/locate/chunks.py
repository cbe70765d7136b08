"""Localisation, step 1: cut each Python file into chunks (module top level, classes, functions)."""

from __future__ import annotations

import hashlib
import inspect
import re
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Literal

from tree_sitter import Language, Node, Parser, Query, QueryCursor

from diffusellm.pipeline.paths import read_file
from diffusellm.pipeline.project import module_name_for

ChunkKind = Literal["module", "class", "function", "method"]

MAX_EMBED_CHARS = 480
"""About 120 word pieces: the embedder's window is 128, longer text only costs time."""

_CAPTURES = """
(identifier) @id
(string) @str
(comment) @comment
(call function: [(identifier) (attribute)] @call)
"""
_WORD_PARTS = re.compile(r"[A-Z]+(?=[A-Z][a-z0-9])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_CONTAINERS = frozenset({
    "if_statement", "elif_clause", "else_clause", "try_statement", "except_clause",
    "finally_clause", "with_statement", "block", "decorated_definition",
})
_DOTTED = re.compile(r"[A-Za-z_][\w.]*")
_QUOTES = re.compile(r"^[rRbBuUfF]*('''|\"\"\"|'|\")|('''|\"\"\"|'|\")$")


@dataclass(frozen=True, slots=True)
class Chunk:
    """One retrievable unit of code with what search needs to know about it."""

    path: str
    qualname: str
    kind: ChunkKind
    start_line: int
    """First line, decorators included."""
    end_line: int
    signature: str
    """`def name(params) -> ret`, `class Name(bases)`, or '' for a module."""
    docstring: str
    identifiers: tuple[str, ...]
    """Distinct names used in the chunk's own code (nested chunks excluded), first use first."""
    literals: tuple[str, ...]
    """String literals (docstrings excluded) and comments, trimmed: error messages live here."""
    calls: tuple[str, ...]
    """Callees as written: `helper`, `self.save`, `os.path.join`."""
    imports: tuple[tuple[str, str], ...]
    """Module chunk only: (name bound, absolute target) for each import in the file."""
    blob: str
    """Git blob id of the file's content when chunked."""


def git_blob_id(data: bytes) -> str:
    """The id git gives a file with these bytes (`git hash-object`), without running git."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def split_identifier(name: str) -> list[str]:
    """`parseHTTPResponse_code2` → `["parse", "HTTP", "Response", "code", "2"]`."""
    return _WORD_PARTS.findall(name)


def is_test_path(path: str) -> bool:
    """Whether a path is test code: under tests/, test_*.py, *_test.py or conftest.py."""
    parts = Path(path).parts
    name = parts[-1] if parts else ""
    return (
        any(p in ("tests", "test", "testing") for p in parts[:-1])
        or name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"
    )


@lru_cache(maxsize=1)
def _language() -> tuple[Parser, Query]:
    import tree_sitter_python

    language = Language(tree_sitter_python.language())
    return Parser(language), Query(language, _CAPTURES)


def _text(node: Node | None) -> str:
    if node is None or node.text is None:
        return ""
    return node.text.decode("utf-8", "replace")


def _callee(written: str) -> str:
    """`os.path.join` stays; `re.sub(x).strip` becomes `*.strip` (receiver unknown)."""
    if _DOTTED.fullmatch(written):
        return written
    return "*." + written.rsplit(".", 1)[-1].strip()


def _string_value(node: Node) -> str:
    return _QUOTES.sub("", _text(node))


@dataclass(slots=True)
class _Span:
    """A chunk under construction: its byte range and what the captures add to it."""

    qualname: str
    kind: ChunkKind
    start_byte: int
    end_byte: int
    start_line: int
    end_line: int
    signature: str
    docstring: str
    doc_range: tuple[int, int]
    identifiers: dict[str, None]
    literals: list[str]
    calls: dict[str, None]


def _docstring(body: Node | None) -> tuple[str, tuple[int, int]]:
    if body is None or body.named_child_count == 0:
        return "", (-1, -1)
    first = body.named_children[0]
    if first.type != "expression_statement" or first.named_child_count != 1:
        return "", (-1, -1)
    node = first.named_children[0]
    if node.type != "string":
        return "", (-1, -1)
    return inspect.cleandoc(_string_value(node)), (node.start_byte, node.end_byte)


def _signature(node: Node, kind: ChunkKind) -> str:
    name = _text(node.child_by_field_name("name"))
    if kind == "class":
        bases = _text(node.child_by_field_name("superclasses"))
        return f"class {name}{bases}"
    params = _text(node.child_by_field_name("parameters"))
    ret = node.child_by_field_name("return_type")
    sig = f"def {name}{params}" + (f" -> {_text(ret)}" if ret is not None else "")
    return " ".join(sig.split())


def _new_span(node: Node, outer: Node, qualname: str, kind: ChunkKind) -> _Span:
    docstring, doc_range = _docstring(node.child_by_field_name("body"))
    return _Span(
        qualname=qualname, kind=kind, start_byte=outer.start_byte, end_byte=outer.end_byte,
        start_line=outer.start_point[0] + 1, end_line=outer.end_point[0] + 1,
        signature=_signature(node, kind), docstring=docstring, doc_range=doc_range,
        identifiers={}, literals=[], calls={},
    )


def _collect_defs(node: Node, prefix: str, in_class: bool, out: list[_Span]) -> None:
    """Find class and function definitions at module or class level (through if/try/with)."""
    for child in node.named_children:
        outer, inner = child, child
        if child.type == "decorated_definition":
            inner = child.child_by_field_name("definition") or child
        if inner.type in ("function_definition", "class_definition"):
            name = _text(inner.child_by_field_name("name"))
            kind: ChunkKind = "method" if in_class else "function"
            if inner.type == "class_definition":
                kind = "class"
            out.append(_new_span(inner, outer, f"{prefix}.{name}", kind))
            if kind == "class":
                body = inner.child_by_field_name("body")
                if body is not None:
                    _collect_defs(body, f"{prefix}.{name}", True, out)
        elif child.type in _CONTAINERS:
            _collect_defs(child, prefix, in_class, out)


def _assign(spans: list[_Span], captures: dict[str, list[Node]]) -> None:
    """Give every captured node to the innermost chunk that contains it."""
    starts = [s.start_byte for s in spans]
    doc_ranges = {s.doc_range for s in spans}

    def owner(node: Node) -> _Span:
        i = bisect_right(starts, node.start_byte) - 1
        while i > 0 and not (spans[i].start_byte <= node.start_byte < spans[i].end_byte):
            i -= 1
        return spans[max(i, 0)]

    # captures come grouped by pattern, not in source order: sort, so that a chunk's text (and the
    # embedding cache keyed by it) is the same on every run
    for node in sorted(captures.get("id", []), key=lambda n: n.start_byte):
        owner(node).identifiers[_text(node)] = None
    for node in sorted(captures.get("call", []), key=lambda n: n.start_byte):
        owner(node).calls[_callee(_text(node))] = None
    literal_nodes = captures.get("str", []) + captures.get("comment", [])
    for node in sorted(literal_nodes, key=lambda n: n.start_byte):
        if (node.start_byte, node.end_byte) in doc_ranges:
            continue
        span = owner(node)
        value = " ".join(_string_value(node).lstrip("#").split())
        if value:
            span.literals.append(value)


def _imports(root: Node, module: str, is_package: bool) -> tuple[tuple[str, str], ...]:
    found: list[tuple[str, str]] = []
    base = module.split(".") if is_package else module.split(".")[:-1]
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type == "import_statement":
            for item in node.named_children:
                target = _text(item.child_by_field_name("name") or item)
                alias = item.child_by_field_name("alias")
                found.append((_text(alias) if alias is not None else target, target))
        elif node.type == "import_from_statement":
            found.extend(_from_import(node, base))
        elif node.type not in ("function_definition", "class_definition", "expression_statement"):
            stack.extend(node.named_children)
        elif node.type != "expression_statement":
            body = node.child_by_field_name("body")
            if body is not None:
                stack.append(body)
    return tuple(found)


def _from_import(node: Node, base: list[str]) -> list[tuple[str, str]]:
    source = node.child_by_field_name("module_name")
    written = _text(source)
    dots = len(written) - len(written.lstrip("."))
    if dots:
        kept = base[: len(base) - (dots - 1)] if dots > 1 else base
        written = ".".join([*kept, written[dots:]] if written[dots:] else kept)
    out: list[tuple[str, str]] = []
    for item in node.children_by_field_name("name"):
        name_node = item.child_by_field_name("name") or item
        alias = item.child_by_field_name("alias")
        name = _text(name_node)
        out.append((_text(alias) if alias is not None else name, f"{written}.{name}"))
    if any(c.type == "wildcard_import" for c in node.named_children):
        out.append(("*", written))
    return out


def chunk_source(path: str, module: str, source: bytes) -> list[Chunk]:
    """Chunks of one file's bytes; `module` is its dotted name. Never raises on bad syntax."""
    parser, query = _language()
    tree = parser.parse(source)
    root = tree.root_node
    head = _Span(
        qualname=module, kind="module", start_byte=0, end_byte=max(len(source), 1) + 1,
        start_line=1, end_line=max(root.end_point[0] + 1, 1), signature="",
        docstring="", doc_range=(-1, -1), identifiers={}, literals=[], calls={},
    )
    head.docstring, head.doc_range = _docstring(root)
    spans = [head]
    _collect_defs(root, module, False, spans)
    spans.sort(key=lambda s: s.start_byte)
    _assign(spans, QueryCursor(query).captures(root))
    blob = git_blob_id(source)
    imports = _imports(root, module, path.endswith("__init__.py"))
    return [
        Chunk(
            path=path, qualname=s.qualname, kind=s.kind, start_line=s.start_line,
            end_line=s.end_line, signature=s.signature, docstring=s.docstring,
            identifiers=tuple(s.identifiers), literals=tuple(s.literals),
            calls=tuple(s.calls), imports=imports if s.kind == "module" else (), blob=blob,
        )
        for s in spans
    ]


def chunk_file(root: Path, rel: str) -> list[Chunk]:
    """Chunks of the file at `root/rel`, named by its module path in the repository."""
    module = module_name_for(root, rel) or Path(rel).stem
    return chunk_source(rel, module, read_file(root, rel))


def without_docstrings(chunks: Iterable[Chunk]) -> list[Chunk]:
    """The same chunks with docstrings blanked (benchmarks query by docstring text)."""
    return [replace(c, docstring="") for c in chunks]


def embedding_text(chunk: Chunk, max_chars: int = MAX_EMBED_CHARS) -> str:
    """Compact text for the embedder: readable name, signature, docstring, split identifiers."""
    words = " ".join(split_identifier(chunk.qualname.replace(".", " ")))
    head = f"{words}\n{chunk.signature}" if chunk.signature else words
    doc = " ".join(chunk.docstring.split())[:240]
    seen: dict[str, None] = {}
    for ident in chunk.identifiers:
        for part in split_identifier(ident):
            if len(part) > 1:
                seen[part.lower()] = None
    text = "\n".join(p for p in (head, doc, " ".join(seen)) if p)
    return text[:max_chars]
