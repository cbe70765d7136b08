"""Tests for add_parameter and remove_parameter: signatures, call sites, refusals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Literal

import pytest

from diffusellm.errors import OperationError
from diffusellm.pipeline.operations.parameters.change import apply_add_parameter, apply_remove_parameter
from diffusellm.pipeline.project import Project
from diffusellm.pipeline.spec import AddParameter, RemoveParameter
from tests.conftest import make_repo

Kind = Literal["keyword_only", "positional_or_keyword"]


def _add(root: Path, target: str, name: str, kind: Kind = "keyword_only",
         default: str = "None", annotation: str | None = None) -> dict[str, str | None]:
    project = Project.load(root)
    apply_add_parameter(project, AddParameter(op="add_parameter", target=target, name=name,
                                              default=default, kind=kind, annotation=annotation))
    return project.changes()


def _add_refused(root: Path, target: str, name: str, kind: Kind = "keyword_only") -> str:
    project = Project.load(root)
    with pytest.raises(OperationError) as info:
        apply_add_parameter(project, AddParameter(op="add_parameter", target=target, name=name,
                                                  default="None", kind=kind))
    assert project.changes() == {}
    return info.value.message


def _remove(root: Path, target: str, name: str) -> dict[str, str | None]:
    project = Project.load(root)
    op = RemoveParameter(op="remove_parameter", target=target, name=name)
    apply_remove_parameter(project, op)
    return project.changes()


def _remove_refused(root: Path, target: str, name: str) -> str:
    project = Project.load(root)
    with pytest.raises(OperationError) as info:
        apply_remove_parameter(project, RemoveParameter(op="remove_parameter", target=target,
                                                        name=name))
    assert project.changes() == {}
    return info.value.message


def _one(tmp_path: Path, source: str) -> Path:
    return make_repo(tmp_path / "repo", {"lib/__init__.py": "", "lib/m.py": source})


@pytest.mark.parametrize(("source", "kind", "expected"), [
    ("def f(a, b):\n    return a\n", "keyword_only",
     "def f(a, b, *, new: int = 1):\n    return a\n"),
    ("def f(a, *, b=2):\n    return a\n", "keyword_only",
     "def f(a, *, b=2, new: int = 1):\n    return a\n"),
    ("def f(a, **kw):\n    return a\n", "keyword_only",
     "def f(a, *, new: int = 1, **kw):\n    return a\n"),
    ("def f(a, b=2):\n    return a\n", "positional_or_keyword",
     "def f(a, b=2, new: int = 1):\n    return a\n"),
    ("def f(a, *, b):\n    return a\n", "positional_or_keyword",
     "def f(a, new: int = 1, *, b):\n    return a\n"),
    ("def f(\n    a,\n    b,  # about b\n):\n    return a\n", "keyword_only",
     "def f(\n    a,\n    b,  # about b\n    *,\n    new: int = 1,\n):\n    return a\n"),
])
def test_add_parameter_places_it_by_kind(tmp_path: Path, source: str, kind: Kind,
                                         expected: str) -> None:
    root = _one(tmp_path, source + "\n\nx = f(1, 2)  # a call\n")
    changes = _add(root, "lib.m.f", "new", kind, default="1", annotation="int")
    assert changes == {"lib/m.py": expected + "\n\nx = f(1, 2)  # a call\n"}


def test_add_parameter_without_annotation_uses_pep8_spacing(tmp_path: Path) -> None:
    root = _one(tmp_path, "class C:\n    def m(self):\n        return 1\n")
    changes = _add(root, "lib.m.C.m", "timeout", default="3.0")
    assert changes == {"lib/m.py": "class C:\n    def m(self, *, timeout=3.0):\n        return 1\n"}


def test_add_parameter_refusals(tmp_path: Path) -> None:
    root = _one(tmp_path, "LIMIT = 3\n\n\ndef f(a, **kw):\n    return a + LIMIT\n\n\n"
                          "f(1, new=2)\n\n\ndef g(a, *args):\n    return a\n\n\ng(1, 2, 3)\n"
                          "g(*[1])\n\n\nclass C:\n    @property\n    def p(self):\n"
                          "        return 1\n")
    assert "already has a parameter 'a'" in _add_refused(root, "lib.m.f", "a")
    assert "uses the name 'LIMIT'" in _add_refused(root, "lib.m.f", "LIMIT")
    assert "lib/m.py:8" in _add_refused(root, "lib.m.f", "new")  # would steal new= from **kw
    message = _add_refused(root, "lib.m.g", "extra", "positional_or_keyword")
    assert "lib/m.py:15" in message and "lib/m.py:16" in message
    assert "property" in _add_refused(root, "lib.m.C.p", "x")


MODULE = '''def compute(a, unused, b=2, *, flag=False):
    """Compute."""
    return a + b if flag else a


class Store:
    def save(self, path, verbose=False):
        return path

    @classmethod
    def build(cls, x, y):
        return cls()
'''
APP = '''from lib.core import Store, compute
from lib import core


def main():
    total = compute(1, 2) + compute(1, 2, 3) + compute(1, unused=5, b=3)
    total += core.compute(
        1,
        2,  # the unused one
    )
    s = Store()
    s.save("p", True)
    Store.save(s, "p", verbose=True)
    Store.build(1, 2)
    return total
'''


def test_remove_parameter_updates_every_call_site(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", {"lib/__init__.py": "", "lib/core.py": MODULE,
                                         "lib/app.py": APP})
    changes = _remove(root, "lib.core.compute", "unused")
    assert changes["lib/core.py"] == MODULE.replace("a, unused, b=2", "a, b=2")
    assert changes["lib/app.py"] == APP.replace(
        "compute(1, 2) + compute(1, 2, 3) + compute(1, unused=5, b=3)",
        "compute(1) + compute(1, 3) + compute(1, b=3)",
    ).replace("        1,\n        2,  # the unused one\n", "        1,\n")
    for rel, text in changes.items():
        assert text is not None
        (root / rel).write_text(text)
    done = subprocess.run([sys.executable, "-c", "from lib.app import main; print(main())"],
                          cwd=root, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "4"


def test_remove_method_parameter_through_instances_and_class(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", {"lib/__init__.py": "", "lib/core.py": MODULE,
                                         "lib/app.py": APP})
    app = _remove(root, "lib.core.Store.save", "verbose")["lib/app.py"]
    assert app is not None
    assert 's.save("p")\n' in app and 'Store.save(s, "p")\n' in app
    app = _remove(root, "lib.core.Store.build", "x")["lib/app.py"]
    assert app is not None and "Store.build(2)\n" in app


def test_remove_parameter_refusals(tmp_path: Path) -> None:
    files = {"lib/__init__.py": "", "lib/core.py": MODULE, "lib/app.py": APP,
             "lib/extra.py": "import functools\n\nfrom lib.core import compute\n\n"
                             "args = (1, 2)\nr = compute(*args)\n"
                             "p = functools.partial(compute, 1)\n"}
    root = make_repo(tmp_path / "repo", files)
    assert "used in the body (lib/core.py, line 8)" in _remove_refused(root, "lib.core.Store.save",
                                                                      "path")
    message = _remove_refused(root, "lib.core.compute", "unused")
    assert "lib/extra.py:6" in message and "lib/extra.py:7" in message
    assert "self parameter" in _remove_refused(root, "lib.core.Store.save", "self")
    assert "no parameter 'nope'" in _remove_refused(root, "lib.core.compute", "nope")


def test_remove_parameter_of_overridden_method_is_refused(tmp_path: Path) -> None:
    source = MODULE + "\n\nclass Sub(Store):\n    def save(self, path, verbose=False):\n" \
                      "        return path\n"
    root = make_repo(tmp_path / "repo", {"lib/__init__.py": "", "lib/core.py": source})
    assert "several related classes" in _remove_refused(root, "lib.core.Store.save", "verbose")


def test_remove_parameter_with_unknown_decorator_is_refused(tmp_path: Path) -> None:
    root = _one(tmp_path, "import functools\n\n\ndef deco(fn):\n    return fn\n\n\n"
                          "@deco\ndef f(a, b):\n    return a\n")
    assert "decorator @deco" in _remove_refused(root, "lib.m.f", "b")


def test_overloaded_function_is_refused(tmp_path: Path) -> None:
    root = _one(tmp_path, "from typing import overload\n\n\n@overload\ndef f(a: int) -> int: ...\n"
                          "@overload\ndef f(a: str) -> str: ...\ndef f(a):\n    return a\n")
    assert "ambiguous" in _add_refused(root, "lib.m.f", "b")
    assert "ambiguous" in _remove_refused(root, "lib.m.f", "a")
