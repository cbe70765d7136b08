"""Digestion, fast path: one tree-sitter pass over a file yields its symbols, imports and calls."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from diffusellm.pipeline.understand.digest.scopes import Scope, SymbolKind, Walker
from diffusellm.pipeline.understand.digest.syntax import (
    docstring_of,
    end_line_of,
    python_parser,
    syntax_errors,
)

__all__ = ["Base", "Call", "Import", "ParsedFile", "Reference", "Symbol", "SymbolKind",
           "parse_python"]


class Symbol(NamedTuple):
    """A definition: module, class, function, method, or module-level constant/variable."""

    qualname: str
    name: str
    kind: SymbolKind
    start_line: int
    """First line, decorators included."""
    end_line: int
    signature: str
    """Parameters and return annotation of a function, `(a, b: int = 1) -> str`; a class's bases."""
    docstring: str
    """First line of the docstring."""
    parent: str
    """Qualname of the enclosing module, class or function."""


class Import(NamedTuple):
    """One name an import statement binds (or, for literal dynamic imports, only loads)."""

    scope: str
    """Qualname of the module or function whose namespace gets the binding."""
    module: str
    """The absolute module imported (relative imports resolved)."""
    name: str | None
    """The imported name of a `from` import; '*' for a star import; None for `import x`."""
    alias: str | None
    local: str
    """The name bound in `scope` ('' when nothing is bound: star and dynamic imports)."""
    target: str
    """What `local` refers to: `pkg.mod` for `import pkg.mod as m`, `pkg.mod.f` for `from pkg.mod
    import f`, `pkg` for `import pkg.mod` (which binds `pkg`)."""
    line: int


class Call(NamedTuple):
    """A call site: the callee as written and, where the file's own names tell, its qualname."""

    scope: str
    """Qualname of the enclosing function, method, class body or module."""
    text: str
    target: str | None
    line: int


class Reference(NamedTuple):
    """A non-call use of a name that resolves through imports or definitions (once per scope)."""

    scope: str
    target: str
    line: int


class Base(NamedTuple):
    """A base class of a class, as written and as resolved."""

    cls: str
    text: str
    target: str | None


@dataclass(frozen=True, slots=True)
class ParsedFile:
    """Everything the fast path learns from one file."""

    module: str
    symbols: list[Symbol]
    imports: list[Import]
    calls: list[Call]
    references: list[Reference]
    bases: list[Base]
    errors: list[str]
    """Syntax errors tree-sitter recovered from; the rows outside the broken regions are kept."""
    dynamic: bool
    """The file imports modules by computed name (`importlib.import_module(name)`)."""


def parse_python(source: bytes, module: str, *, is_package: bool = False) -> ParsedFile:
    """Parse one file's bytes; `module` is its dotted name, `is_package` true for `__init__.py`.

    Never raises on bad syntax: tree-sitter recovers, the broken regions are skipped and
    described in `errors`.
    """
    if source.startswith(b"\xef\xbb\xbf"):
        source = source[3:]
    tree = python_parser().parse(source)
    root = tree.root_node
    module = module or "__init__"
    walker = Walker(module, is_package)
    scope = Scope("module", module, None)
    walker.visit_children(root, scope)
    resolved = walker.resolve()
    name = module.rsplit(".", 1)[-1]
    head = Symbol(module, name, "module", 1, max(end_line_of(root), 1), "",
                  docstring_of(root), "")
    return ParsedFile(
        module=module,
        symbols=[head, *(Symbol(*row) for row in walker.symbols)],
        imports=[Import(*row) for row in walker.imports],
        calls=[Call(*row) for row in resolved.calls],
        references=[Reference(*row) for row in resolved.references],
        bases=[Base(*row) for row in resolved.bases],
        errors=syntax_errors(root) if root.has_error else [],
        dynamic=walker.dynamic,
    )
