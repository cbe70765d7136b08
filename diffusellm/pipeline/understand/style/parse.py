"""Phase 1 style profiling: one tree-sitter parse per file yields its names, docstrings, imports."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Literal

import tree_sitter_python
from tree_sitter import Language, Node, Parser

from diffusellm.pipeline.understand.style.naming import Identifier, convention_of, is_dunder
from diffusellm.pipeline.understand.style.profile import IdentifierKind

Scope = Literal["module", "class", "function"]

# Statements whose bodies still belong to the enclosing scope.
_NESTED = frozenset(
    {"if_statement", "elif_clause", "else_clause", "for_statement", "while_statement",
     "try_statement", "except_clause", "except_group_clause", "finally_clause",
     "with_statement", "match_statement", "case_clause", "block"}
)
_TARGETS = frozenset({"pattern_list", "tuple_pattern", "list_pattern", "list_splat_pattern"})
# Names a framework dictates (unittest hooks); they say nothing about the authors' taste.
_FRAMEWORK_METHODS = frozenset(
    {"setUp", "tearDown", "setUpClass", "tearDownClass", "asyncSetUp", "asyncTearDown",
     "setUpTestData", "addCleanup", "maxDiff"}
)


@dataclass(frozen=True)
class ImportRecord:
    """One imported module of a module-level import statement."""

    module: str
    """Dotted module name; empty for `from . import x`."""
    level: int
    """Leading dots of a relative import; 0 when absolute."""
    is_from: bool
    line: int


@dataclass
class ParsedFile:
    """What the style profiler needs from one Python file."""

    rel: str
    text: str
    identifiers: list[Identifier] = field(default_factory=lambda: [])
    docstrings: list[str] = field(default_factory=lambda: [])
    definitions: int = 0
    """Modules, classes and functions: the places a docstring could be."""
    imports: list[ImportRecord] = field(default_factory=lambda: [])
    leading_imports: list[ImportRecord] = field(default_factory=lambda: [])
    """The import block at the top of the module, the part isort/ruff order."""
    future_annotations: bool = False
    substantive: bool = False
    """Whether the module holds any statement besides its docstring."""


def make_parser() -> Parser:
    """A tree-sitter parser for Python."""
    return Parser(Language(tree_sitter_python.language()))


def is_test_path(rel: str) -> bool:
    """Whether a file is test code (its names follow the test runner more than the authors)."""
    path = PurePosixPath(rel)
    stem = path.stem
    in_tests = bool({"tests", "test", "testing"}.intersection(path.parts[:-1]))
    return in_tests or stem.startswith("test_") or stem.endswith("_test") or stem == "conftest"


def _text(node: Node | None) -> str:
    if node is None or node.text is None:
        return ""
    return node.text.decode("utf-8", "replace")


def _string_value(node: Node) -> str:
    """The contents of a string literal without prefix and quotes."""
    raw = _text(node)
    start = next((c for c in node.children if c.type == "string_start"), None)
    end = next((c for c in node.children if c.type == "string_end"), None)
    head = len(_text(start)) if start is not None else 0
    tail = len(_text(end)) if end is not None else 0
    return raw[head : len(raw) - tail]


def _docstring_node(body: Node | None) -> Node | None:
    """The string of the first statement of a body, when that statement is a lone string."""
    if body is None:
        return None
    for child in body.named_children:
        if child.type == "comment":
            continue
        parts = [c for c in child.named_children if c.type != "comment"]
        if child.type == "expression_statement" and len(parts) == 1 and parts[0].type == "string":
            return parts[0]
        return None
    return None


def _param_name(param: Node) -> Node | None:
    """The name of one parameter: `x`, `x: int`, `x=1`, `*args`, `**kwargs: Any`."""
    name = param.child_by_field_name("name")
    if name is None:
        name = param if param.type == "identifier" else next(iter(param.named_children), None)
    if name is not None and name.type in ("list_splat_pattern", "dictionary_splat_pattern"):
        name = next(iter(name.named_children), None)
    return name if name is not None and name.type == "identifier" else None


class _Walker:
    """Collects definitions and docstrings of one file, statement by statement (not expressions)."""

    def __init__(self, parsed: ParsedFile) -> None:
        self.parsed = parsed
        self.python2 = False

    def add(self, kind: IdentifierKind, node: Node | None) -> None:
        name = _text(node)
        if node is None or not name.isidentifier() or is_dunder(name) or len(name.strip("_")) <= 1:
            return
        shown = name
        if kind in ("function", "method"):
            if name in _FRAMEWORK_METHODS:
                return
            if name.startswith("test_") and len(name) > 6:
                shown = name[5:]
        self.parsed.identifiers.append(Identifier(
            kind=kind, name=name, file=self.parsed.rel, line=node.start_point[0] + 1,
            convention=convention_of(shown),
        ))

    def docstring(self, body: Node | None) -> None:
        self.parsed.definitions += 1
        node = _docstring_node(body)
        if node is not None:
            self.parsed.docstrings.append(_string_value(node))

    def body(self, node: Node, scope: Scope) -> None:
        for child in node.named_children:
            if child.type == "decorated_definition":
                child = child.child_by_field_name("definition") or child
            kind = child.type
            if kind == "function_definition":
                self.function(child, scope)
            elif kind == "class_definition":
                self.add("class", child.child_by_field_name("name"))
                self.docstring(child.child_by_field_name("body"))
                self.nested(child.child_by_field_name("body"), "class")
            elif kind == "expression_statement":
                self.assignment(child, scope)
            elif kind in ("print_statement", "exec_statement"):
                self.python2 = True  # tree-sitter accepts these; Python 3 does not
            elif kind in _NESTED:
                if kind == "for_statement" and scope == "function":
                    self.targets(child.child_by_field_name("left"), scope)
                self.body(child, scope)

    def nested(self, node: Node | None, scope: Scope) -> None:
        if node is not None:
            self.body(node, scope)

    def function(self, node: Node, scope: Scope) -> None:
        self.add("method" if scope == "class" else "function", node.child_by_field_name("name"))
        params = node.child_by_field_name("parameters")
        for param in params.named_children if params is not None else []:
            name = _param_name(param)
            if name is not None and _text(name) not in ("self", "cls"):
                self.add("parameter", name)
        body = node.child_by_field_name("body")
        self.docstring(body)
        self.nested(body, "function")

    def assignment(self, statement: Node, scope: Scope) -> None:
        for node in statement.named_children:
            while node is not None and node.type == "assignment" and scope != "class":
                self.targets(node.child_by_field_name("left"), scope)
                node = node.child_by_field_name("right")

    def targets(self, node: Node | None, scope: Scope) -> None:
        if node is None:
            return
        if node.type in _TARGETS:
            for child in node.named_children:
                self.targets(child, scope)
        elif node.type == "identifier":
            if scope == "function":
                self.add("variable", node)
                return
            convention = convention_of(_text(node))
            if convention == "UPPER_CASE":
                self.add("constant", node)
            elif convention != "PascalCase":  # module-level PascalCase names are type aliases
                self.add("variable", node)


def _module_identifier(parsed: ParsedFile) -> None:
    path = PurePosixPath(parsed.rel)
    name = path.parent.name if path.stem == "__init__" else path.stem
    if path.stem == "__main__" or not name:
        return
    shown = name[5:] if name.startswith("test_") and len(name) > 6 else name
    if name.isidentifier() and len(name) > 1:
        parsed.identifiers.append(Identifier(
            kind="module", name=name, file=parsed.rel, line=1, convention=convention_of(shown)
        ))


def _import_records(node: Node) -> list[ImportRecord]:
    line = node.start_point[0] + 1
    if node.type == "future_import_statement":
        return [ImportRecord(module="__future__", level=0, is_from=True, line=line)]
    if node.type == "import_statement":
        records: list[ImportRecord] = []
        for name in node.children_by_field_name("name"):
            dotted = name.child_by_field_name("name") if name.type == "aliased_import" else name
            records.append(ImportRecord(module=_text(dotted), level=0, is_from=False, line=line))
        return records
    source = node.child_by_field_name("module_name")
    if source is not None and source.type == "relative_import":
        prefix = next((c for c in source.children if c.type == "import_prefix"), None)
        dotted = next((c for c in source.children if c.type == "dotted_name"), None)
        level = _text(prefix).count(".")
        return [ImportRecord(module=_text(dotted), level=level, is_from=True, line=line)]
    return [ImportRecord(module=_text(source), level=0, is_from=True, line=line)]


def _module_level(parsed: ParsedFile, root: Node) -> None:
    """Imports, the leading import block and `from __future__ import annotations`."""
    docstring = _docstring_node(root)
    leading_open = True
    for child in root.named_children:
        is_docstring = docstring is not None and child.start_byte == docstring.start_byte
        if child.type == "comment" or is_docstring:
            continue
        parsed.substantive = True
        if child.type in ("import_statement", "import_from_statement", "future_import_statement"):
            records = _import_records(child)
            parsed.imports.extend(records)
            if leading_open:
                parsed.leading_imports.extend(records)
            if child.type == "future_import_statement" and "annotations" in _text(child).split():
                parsed.future_annotations = True
        elif parsed.imports:
            leading_open = False


def parse_file(parser: Parser, rel: str, text: str) -> ParsedFile | None:
    """Everything the profiler reads from one file; None when it is not valid Python 3."""
    tree = parser.parse(text.encode("utf-8", "surrogatepass"))
    root = tree.root_node
    if root.has_error:
        return None
    parsed = ParsedFile(rel=rel, text=text)
    _module_identifier(parsed)
    _module_level(parsed, root)
    walker = _Walker(parsed)
    if parsed.substantive or _docstring_node(root) is not None:
        walker.docstring(root)
    walker.body(root, "module")
    return None if walker.python2 else parsed
