"""Digestion fast path: symbols, imports and resolved calls from real tree-sitter parses."""

from __future__ import annotations

import textwrap

import libcst as cst
import pytest

from diffusellm.pipeline.project import resolve_relative
from diffusellm.pipeline.understand.digest.parse import ParsedFile, Symbol, parse_python


def parse(source: str, module: str = "pkg.mod", *, is_package: bool = False) -> ParsedFile:
    return parse_python(textwrap.dedent(source).encode(), module, is_package=is_package)


def symbol(parsed: ParsedFile, qualname: str) -> Symbol:
    found = [s for s in parsed.symbols if s.qualname == qualname]
    assert len(found) == 1, [s.qualname for s in parsed.symbols]
    return found[0]


def calls(parsed: ParsedFile, scope: str) -> dict[str, str | None]:
    return {c.text: c.target for c in parsed.calls if c.scope == scope}


SAMPLE = '''\
"""Engine room.

More text.
"""
import os
LIMIT = 10
default_name = "x"
_private_TOKEN: str = "y"


@decorator(1)
def run(path, /, mode: str = "r", *args, strict, retries=3, **extra) -> list[str]:
    """Run the thing.

    Details.
    """
    def inner(value):
        return value
    return inner(path)


class Engine(Base, metaclass=Meta):
    """An engine."""

    speed = 3

    def start(self, fuel: int) -> bool:
        return True

    @staticmethod
    def make(
        size,
        colour,
    ):
        pass

    class Part:
        def fit(self):
            pass
'''


def test_symbols_have_qualnames_kinds_lines_signatures_and_docstrings() -> None:
    parsed = parse(SAMPLE, "pkg.engine")

    module = symbol(parsed, "pkg.engine")
    assert (module.kind, module.start_line, module.docstring) == ("module", 1, "Engine room.")
    assert symbol(parsed, "pkg.engine.LIMIT").kind == "constant"
    assert symbol(parsed, "pkg.engine.default_name").kind == "variable"
    assert symbol(parsed, "pkg.engine._private_TOKEN").kind == "variable"
    run = symbol(parsed, "pkg.engine.run")
    assert run.kind == "function"
    assert (run.start_line, run.end_line) == (11, 19)  # the decorator line is included
    assert run.signature == (
        '(path, /, mode: str = "r", *args, strict, retries=3, **extra) -> list[str]')
    assert run.docstring == "Run the thing."
    assert symbol(parsed, "pkg.engine.run.inner").parent == "pkg.engine.run"
    engine = symbol(parsed, "pkg.engine.Engine")
    assert (engine.kind, engine.signature, engine.docstring) == (
        "class", "(Base, metaclass=Meta)", "An engine.")
    start = symbol(parsed, "pkg.engine.Engine.start")
    assert (start.kind, start.signature, start.parent) == (
        "method", "(self, fuel: int) -> bool", "pkg.engine.Engine")
    assert symbol(parsed, "pkg.engine.Engine.make").signature == "(size, colour)"
    assert symbol(parsed, "pkg.engine.Engine.Part.fit").kind == "method"
    assert not [s for s in parsed.symbols if s.name in ("speed", "os", "value")]
    assert parsed.errors == []


def test_imports_resolve_relative_and_keep_aliases() -> None:
    parsed = parse("""\
        import os.path
        import json as j
        from . import sibling
        from .helpers import tool as t, other
        from ..core.util import deep
        from top.level import thing
        from .star import *
        """, "pkg.sub.mod")

    rows = {(i.module, i.name, i.alias, i.local, i.target) for i in parsed.imports}
    assert rows == {
        ("os.path", None, None, "os", "os"),
        ("json", None, "j", "j", "json"),
        ("pkg.sub", "sibling", None, "sibling", "pkg.sub.sibling"),
        ("pkg.sub.helpers", "tool", "t", "t", "pkg.sub.helpers.tool"),
        ("pkg.sub.helpers", "other", None, "other", "pkg.sub.helpers.other"),
        ("pkg.core.util", "deep", None, "deep", "pkg.core.util.deep"),
        ("top.level", "thing", None, "thing", "top.level.thing"),
        ("pkg.sub.star", "*", None, "", "pkg.sub.star.*"),
    }
    assert {i.line for i in parsed.imports if i.name == "deep"} == {5}


def test_relative_imports_in_a_package_init_resolve_against_the_package() -> None:
    parsed = parse("from .core import helper\nfrom .. import up\n", "pkg.sub", is_package=True)

    assert [(i.module, i.target) for i in parsed.imports] == [
        ("pkg.sub.core", "pkg.sub.core.helper"), ("pkg", "pkg.up")]


@pytest.mark.parametrize(("statement", "module", "is_package"), [
    ("from . import x", "a.b.c", False),
    ("from .m import x", "a.b.c", False),
    ("from .. import x", "a.b.c", False),
    ("from ..m.n import x", "a.b.c", False),
    ("from . import x", "a.b", True),
    ("from ...m import x", "a.b.c.d", True),
    ("from .m import x", "top", False),
])
def test_relative_resolution_matches_the_refactor_operations(
        statement: str, module: str, is_package: bool) -> None:
    node = cst.parse_statement(statement)
    assert isinstance(node, cst.SimpleStatementLine)
    assert isinstance(node.body[0], cst.ImportFrom)
    expected = resolve_relative(module, is_package, node.body[0])

    parsed = parse(statement + "\n", module, is_package=is_package)

    assert parsed.imports[0].module == expected


def test_too_many_dots_stay_unresolved_instead_of_naming_a_wrong_module() -> None:
    parsed = parse("from ... import x\n", "pkg.mod")

    assert parsed.imports[0].module == "...", parsed.imports


def test_calls_resolve_through_local_definitions_imports_and_aliases() -> None:
    parsed = parse("""\
        import pkg.util as u
        import os.path
        from pkg.tools import slug as make_slug
        from . import sibling

        def helper():
            pass

        def main(items):
            helper()
            u.clean(items)
            make_slug("x")
            os.path.join("a", "b")
            sibling.run()
            len(items)
            items.append(1)
            later()

        def later():
            pass
        """, "pkg.app")

    assert calls(parsed, "pkg.app.main") == {
        "helper": "pkg.app.helper",
        "u.clean": "pkg.util.clean",
        "make_slug": "pkg.tools.slug",
        "os.path.join": "os.path.join",
        "sibling.run": "pkg.sibling.run",
        "len": None,
        "items.append": None,
        "later": "pkg.app.later",
    }


def test_self_and_cls_calls_resolve_to_the_enclosing_class() -> None:
    parsed = parse("""\
        class Engine:
            def run(self):
                self.step()
                self.parts.clean()

            @classmethod
            def build(cls):
                return cls.create()

            @staticmethod
            def fix(self):
                self.step()

            def step(self):
                def nested():
                    self.stop()
                nested()
        """, "pkg.engine")

    assert calls(parsed, "pkg.engine.Engine.run") == {
        "self.step": "pkg.engine.Engine.step", "self.parts.clean": None}
    assert calls(parsed, "pkg.engine.Engine.build") == {"cls.create": "pkg.engine.Engine.create"}
    assert calls(parsed, "pkg.engine.Engine.fix") == {"self.step": None}
    assert calls(parsed, "pkg.engine.Engine.step.nested") == {
        "self.stop": "pkg.engine.Engine.stop"}
    assert calls(parsed, "pkg.engine.Engine.step") == {
        "nested": "pkg.engine.Engine.step.nested"}


def test_locals_and_parameters_shadow_module_names() -> None:
    parsed = parse("""\
        from pkg import helper, tool

        def a(helper):
            helper()

        def b():
            tool = make()
            tool()

        def c():
            for helper in range(3):
                helper()
            return [tool() for tool in ()]

        def d():
            global tool
            tool()

        class K:
            helper = 1

            def m(self):
                helper()
        """, "pkg.x")

    assert calls(parsed, "pkg.x.a") == {"helper": None}
    assert calls(parsed, "pkg.x.b")["tool"] is None
    assert calls(parsed, "pkg.x.c") == {"range": None, "helper": None, "tool": None}
    assert calls(parsed, "pkg.x.d") == {"tool": "pkg.tool"}
    # A class body's names are not visible inside its methods.
    assert calls(parsed, "pkg.x.K.m") == {"helper": "pkg.helper"}


def test_non_call_references_and_bases_are_recorded_once_per_scope() -> None:
    parsed = parse("""\
        from pkg.base import Base
        from pkg import registry

        HANDLERS = [registry.handle]

        class Child(Base):
            def go(self):
                callback = registry.handle
                return map(registry.handle, [callback])
        """, "pkg.child")

    refs = {(r.scope, r.target) for r in parsed.references}
    assert ("pkg.child", "pkg.registry.handle") in refs
    assert ("pkg.child.Child.go", "pkg.registry.handle") in refs
    assert len([r for r in parsed.references if r.scope == "pkg.child.Child.go"]) == 1
    assert [(b.cls, b.text, b.target) for b in parsed.bases] == [
        ("pkg.child.Child", "Base", "pkg.base.Base")]


def test_literal_dynamic_imports_are_imports_and_computed_ones_are_flagged() -> None:
    literal = parse("""\
        import importlib
        def load():
            return importlib.import_module("pkg.plugins.csv")
        """)
    computed = parse("""\
        import importlib
        def load(name):
            return importlib.import_module(name)
        """)

    assert ("pkg.plugins.csv", "pkg.mod.load") in {(i.module, i.scope) for i in literal.imports}
    assert not literal.dynamic
    assert computed.dynamic


def test_a_syntax_error_is_reported_and_the_rest_of_the_file_is_kept() -> None:
    parsed = parse("""\
        def good():
            return 1

        def broken(:
            pass

        class Later:
            pass
        """)

    assert parsed.errors and parsed.errors[0].startswith("line 4:")
    names = {s.qualname for s in parsed.symbols}
    assert {"pkg.mod.good", "pkg.mod.Later"} <= names


def test_deeply_nested_expressions_do_not_exhaust_the_stack() -> None:
    source = "X = " + " + ".join(f"f{i}()" for i in range(5000)) + "\n"

    parsed = parse_python(source.encode(), "pkg.deep")

    assert len(parsed.calls) == 5000


def test_byte_order_mark_and_empty_files_parse() -> None:
    with_bom = parse_python(b"\xef\xbb\xbfdef f():\n    pass\n", "m")
    empty = parse_python(b"", "pkg")

    assert [s.qualname for s in with_bom.symbols] == ["m", "m.f"]
    assert with_bom.errors == []
    assert [(s.qualname, s.kind) for s in empty.symbols] == [("pkg", "module")]
