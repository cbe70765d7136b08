"""Phase 4, refactor support: one pass over a file collecting uses of a symbol LibCST resolves."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import libcst as cst
import libcst.matchers as m

from diffusellm.pipeline.operations.refs.bindings import FileInfo, Resolver, dotted
from diffusellm.pipeline.operations.refs.text import (
    Mention,
    advance,
    backtick_mentions,
    code_mentions,
    doctest_mentions,
    whole_dotted,
)
from diffusellm.pipeline.project import resolve_relative

RefKind = Literal["definition", "name", "attribute", "import", "all", "string", "docstring"]
_DYNAMIC = frozenset({"getattr", "setattr", "hasattr", "delattr"})
_ALL_EDIT = m.Attribute(m.Name("__all__"), m.Name("extend") | m.Name("append"))
_LITERALS = (cst.SimpleString, cst.ConcatenatedString, cst.FormattedString, cst.Integer, cst.Float,
             cst.Imaginary, cst.List, cst.Tuple, cst.Dict, cst.Set, cst.ListComp, cst.DictComp,
             cst.SetComp)


@dataclass(frozen=True)
class Query:
    """What to look for: the identifier, the definitions it resolves to, and how it is reached."""

    old: str
    names: frozenset[str]  # `old` plus local aliases (`from m import old as alias`)
    qualnames: frozenset[str]  # canonical qualified names of the definitions
    module: str  # the module defining the target
    member: bool  # a method or class attribute, used through instances
    owners: frozenset[str] = frozenset()  # classes whose `.old` is the member (family + subclasses)
    export_modules: frozenset[str] = frozenset()  # modules whose namespace holds the target


@dataclass(frozen=True)
class Hit:
    """A resolved use inside the scanned file."""

    line: int
    column: int
    kind: RefKind


@dataclass(frozen=True)
class Problem:
    """A use that cannot be resolved safely."""

    rel: str
    line: int
    message: str
    overridden: str = ""
    """For a method a base outside the repository also defines: that base (`dict`)."""


@dataclass
class ScanResult:
    """What one file contributes: resolved uses, uses left for jedi, and problems."""

    hits: set[Hit] = field(default_factory=lambda: set())
    # (line, column) of `.member` uses left for jedi, and of the dot before each
    pending: list[tuple[int, int, int, int]] = field(default_factory=lambda: [])
    keywords: list[tuple[int, int]] = field(default_factory=lambda: [])
    problems: list[Problem] = field(default_factory=lambda: [])
    reaches: bool = False


def _type_strings(node: cst.Call, callee: str) -> list[cst.SimpleString]:
    """The strings a TypeVar (bound=, constraints) or a ForwardRef holds as types."""
    if callee == "ForwardRef":
        typed = node.args[:1]
    else:  # TypeVar("T", "A", "B", bound="C"): the name is a string, not a type
        typed = [a for a in node.args[1:] if a.keyword is None or a.keyword.value == "bound"]
    return [a.value for a in typed if isinstance(a.value, cst.SimpleString)]


def _string_text(node: cst.SimpleString) -> tuple[str, int]:
    """The raw text between the quotes of a string and its offset inside the token."""
    start = len(node.prefix) + len(node.quote)
    return node.value[start:len(node.value) - len(node.quote)], start


def _literal(node: cst.BaseExpression | None) -> str | None:
    if isinstance(node, cst.SimpleString):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None


class Scanner(cst.CSTVisitor):
    """Collects the uses of one symbol in one file."""

    def __init__(self, info: FileInfo, resolver: Resolver, query: Query) -> None:
        super().__init__()
        self.info, self.resolver, self.query = info, resolver, query
        self.result = ScanResult(reaches=query.member or info.module in query.export_modules)
        self._skip: set[int] = set()
        self._defs: set[int] = set()
        self._classes: list[str] = []
        stars = resolver.stars(info.module) if not query.member else []
        self._star_bound = any(resolver.canonical(f"{s}.{query.old}") in query.qualnames
                               for s in stars)

    # -- helpers ---------------------------------------------------------------------------
    def _hit(self, node: cst.CSTNode, kind: RefKind) -> None:
        line, column = self.info.position(node)
        self.result.hits.add(Hit(line, column, kind))

    def _problem(self, node: cst.CSTNode, message: str) -> None:
        line, _ = self.info.position(node)
        self.result.problems.append(Problem(self.info.rel, line, message))

    def _matches(self, fqns: set[str]) -> bool:
        canon = {self.resolver.canonical(f) for f in fqns if "<locals>" not in f}
        if canon & self.query.qualnames:
            return True
        return self.query.member and any(
            c.rpartition(".")[0] in self.query.owners and c.rpartition(".")[2] == self.query.old
            for c in canon
        )

    def _mention_parts(self, mention: Mention) -> list[int]:
        """Indexes of the parts of a mention that name the target."""
        parts, old = mention.parts, self.query.old
        owner = self._classes[-1] if self._classes else ""
        if self.query.member and self.resolver.canonical(owner) in self.query.owners:
            if parts == (old,):
                return [0]
            if len(parts) == 2 and parts[0] in ("self", "cls") and parts[1] == old:
                return [1]
        found: list[int] = []
        for k, part in enumerate(parts):
            if part != old:
                continue
            fqn = self.resolver.resolve_in(self.info.module, parts[:k + 1])
            owner_fqn = self.resolver.resolve_in(self.info.module, parts[:k]) if k else ""
            if fqn in self.query.qualnames or (
                    self.query.member and owner_fqn in self.query.owners):
                found.append(k)
        return found

    def _mentions(self, node: cst.CSTNode, raw: str, mentions: list[Mention],
                  kind: RefKind) -> None:
        mentions = [x for x in mentions if self.query.old in x.parts]
        if not mentions:
            return
        line, column = self.info.position(node)
        for mention in mentions:
            for k in self._mention_parts(mention):
                pos = advance(line, column, raw[:mention.offset_of(k)])
                self.result.hits.add(Hit(pos[0], pos[1], kind))

    def _code_string(self, node: cst.SimpleString) -> None:
        """A string holding code (a forward-reference annotation, a cast target)."""
        self._skip.add(id(node))
        text, start = _string_text(node)
        self._mentions(node, node.value, code_mentions(text, start), "string")

    # -- scopes and definitions -----------------------------------------------------------
    def visit_ClassDef(self, node: cst.ClassDef) -> None:  # noqa: N802
        outer = self._classes[-1] if self._classes else self.info.module
        self._classes.append(f"{outer}.{node.name.value}")
        self._defs.add(id(node.name))

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:  # noqa: N802
        self._classes.pop()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:  # noqa: N802
        self._defs.add(id(node.name))

    def visit_Assign(self, node: cst.Assign) -> None:  # noqa: N802
        for target in node.targets:
            self._defs.add(id(target.target))
        if any(m.matches(t.target, m.Name("__all__")) for t in node.targets):
            self._all_strings(node.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:  # noqa: N802
        self._defs.add(id(node.target))
        if m.matches(node.target, m.Name("__all__")) and node.value is not None:
            self._all_strings(node.value)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:  # noqa: N802
        if m.matches(node.target, m.Name("__all__")):
            self._all_strings(node.value)

    def _all_strings(self, value: cst.BaseExpression) -> None:
        """`__all__` entries that name the target as this module binds it."""
        bindings = self.resolver.bindings(self.info.module)
        for string in m.findall(value, m.SimpleString()):
            assert isinstance(string, cst.SimpleString)
            self._skip.add(id(string))
            name = _literal(string)
            binding = bindings.get(name or "")
            if name in self.query.names and binding is not None and not self.query.member \
                    and self.resolver.canonical(binding.fqn) in self.query.qualnames:
                line, column = self.info.position(string)
                self.result.hits.add(Hit(line, column + _string_text(string)[1], "all"))

    # -- names, attributes, imports -------------------------------------------------------
    def visit_Name(self, node: cst.Name) -> None:  # noqa: N802
        if id(node) in self._skip or node.value not in self.query.names:
            return
        fqns = self.info.qualified(node)
        if self._matches(fqns) or (not fqns and self._star_bound and node.value == self.query.old):
            self._hit(node, "definition" if id(node) in self._defs else "name")

    def visit_Attribute(self, node: cst.Attribute) -> None:  # noqa: N802
        self._skip.add(id(node.attr))
        if node.attr.value not in self.query.names:
            return
        if self._matches(self.info.qualified(node)):
            self._hit(node.attr, "attribute")
        elif node.attr.value == self.query.old and not isinstance(node.value, _LITERALS):
            line, column = self.info.position(node.attr)
            dot_line, dot_column = self.info.position(node.dot)
            self.result.pending.append((line, column, dot_line, dot_column))

    def visit_Import(self, node: cst.Import) -> bool:  # noqa: N802
        for alias in node.names:
            parts = dotted(alias.name).split(".")
            prefixes = {".".join(parts[:k]) for k in range(1, len(parts) + 1)}
            if prefixes & self.query.export_modules:
                self.result.reaches = True
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:  # noqa: N802
        base = resolve_relative(self.info.module, self.info.is_package, node)
        if base in self.query.export_modules:
            self.result.reaches = True
        if isinstance(node.names, cst.ImportStar):
            return False
        for alias in node.names:
            full = f"{base}.{dotted(alias.name)}" if base else dotted(alias.name)
            if full in self.query.export_modules:
                self.result.reaches = True
            if not self.query.member and self.resolver.canonical(full) in self.query.qualnames:
                self.result.reaches = True
                self._hit(alias.name, "import")
                asname = alias.asname.name if alias.asname is not None else None
                if asname is not None and m.matches(asname, m.Name(self.query.old)):
                    self._hit(asname, "import")
        return False

    def visit_Global(self, node: cst.Global) -> None:  # noqa: N802
        for item in node.names:
            self._skip.add(id(item.name))
            if not self.query.member and self.info.module == self.query.module \
                    and item.name.value == self.query.old:
                self._hit(item.name, "name")

    def visit_Arg(self, node: cst.Arg) -> None:  # noqa: N802
        if node.keyword is not None:
            self._skip.add(id(node.keyword))
            if node.keyword.value == self.query.old:
                self.result.keywords.append(self.info.position(node.keyword))

    # -- strings, docstrings, comments ----------------------------------------------------
    def visit_Expr(self, node: cst.Expr) -> bool:  # noqa: N802
        if not isinstance(node.value, (cst.SimpleString, cst.ConcatenatedString)):
            return True
        for string in m.findall(node.value, m.SimpleString()):
            assert isinstance(string, cst.SimpleString)
            raw = string.value
            if self.query.old in raw:
                found = backtick_mentions(raw) + doctest_mentions(raw)
                self._mentions(string, raw, found, "docstring")
        return False

    def visit_Comment(self, node: cst.Comment) -> None:  # noqa: N802
        if self.query.old in node.value:
            self._mentions(node, node.value, backtick_mentions(node.value), "docstring")

    def visit_Annotation(self, node: cst.Annotation) -> None:  # noqa: N802
        for string in m.findall(node.annotation, m.SimpleString()):
            assert isinstance(string, cst.SimpleString)
            self._code_string(string)

    def visit_SimpleString(self, node: cst.SimpleString) -> None:  # noqa: N802
        if id(node) in self._skip:
            return
        text, start = _string_text(node)
        if text in self.query.export_modules:  # importlib.import_module("pkg.mod") and the like
            self.result.reaches = True
        mention = whole_dotted(text) if "\\" not in text else None
        if mention is not None and self.query.old in mention.parts:
            self._mentions(node, node.value, [Mention(start, mention.parts)], "string")

    # -- dynamic access -------------------------------------------------------------------
    def visit_Call(self, node: cst.Call) -> None:  # noqa: N802
        name = dotted(node.func)
        callee = name.rpartition(".")[2]
        args = [a.value for a in node.args]
        named = len(args) > 1 and _literal(args[1]) == self.query.old
        if named and (name.endswith("patch.object") or name.endswith("monkeypatch.setattr")):
            self._patch_object(name, args[0], args[1])
        elif callee in _DYNAMIC and named:
            self._problem(node, f"{callee}(..., {self.query.old!r}) reaches it dynamically")
        elif callee in ("attrgetter", "methodcaller") and any(
                (_literal(a) or "").split(".")[-1] == self.query.old for a in args):
            self._problem(node, f"{callee}({self.query.old!r}) reaches it dynamically")
        elif callee == "cast" and args and isinstance(args[0], cst.SimpleString):
            self._code_string(args[0])
        elif callee in ("TypeVar", "ForwardRef"):  # forward references: code in strings
            for string in _type_strings(node, callee):
                self._code_string(string)
        if m.matches(node.func, _ALL_EDIT):
            for arg in args:
                self._all_strings(arg)

    def _patch_object(self, call: str, owner: cst.BaseExpression,
                      string: cst.BaseExpression) -> None:
        """`patch.object(owner, "name")`: a reference when `owner` holds the target."""
        fqns = {self.resolver.canonical(f) for f in self.info.qualified(owner)
                if "<locals>" not in f}
        scope = self.query.owners if self.query.member else self.query.export_modules
        assert isinstance(string, cst.SimpleString)
        self._skip.add(id(string))
        if fqns & scope:
            line, column = self.info.position(string)
            self.result.hits.add(Hit(line, column + _string_text(string)[1], "string"))
        elif not fqns:
            self._problem(string, f"{call}(..., {self.query.old!r}) on an object "
                                  "that cannot be resolved")

    def visit_Subscript(self, node: cst.Subscript) -> None:  # noqa: N802
        if len(node.slice) != 1 or not isinstance(node.slice[0].slice, cst.Index):
            return
        if _literal(node.slice[0].slice.value) != self.query.old:
            return
        value = node.value
        owner = dotted(value.func) if isinstance(value, cst.Call) else dotted(value)
        if owner.endswith("__dict__") or owner in ("vars", "globals", "locals"):
            self._problem(node, f"{owner}[{self.query.old!r}] reaches it dynamically")


def scan_file(info: FileInfo, resolver: Resolver, query: Query) -> ScanResult:
    """Every use of the query's symbol in one file; problems only where the file can reach it."""
    scanner = Scanner(info, resolver, query)
    info.wrapper.visit(scanner)
    result = scanner.result
    if any(h.kind in ("name", "attribute", "import", "definition") for h in result.hits):
        result.reaches = True
    if not result.reaches:
        result.problems.clear()
        result.keywords.clear()
        result.pending.clear()
    return result
