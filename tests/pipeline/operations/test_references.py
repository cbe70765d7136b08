"""Tests for find_references: module symbols through LibCST, methods through jedi, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from diffusellm.errors import OperationError
from diffusellm.pipeline.operations.refs.uses import Reference, find_references
from diffusellm.pipeline.project import Project, resolve_target
from tests.conftest import make_repo

PKG = {
    "pkg/__init__.py": '"""Package."""\nfrom pkg.mod import helper\n\n__all__ = ["helper"]\n',
    "pkg/mod.py": (
        '"""Module with `helper`."""\n\n\ndef helper(x):\n    """Return x."""\n    return x\n\n\n'
        "def user(helper):\n    return helper(1)\n"
    ),
    "pkg/other.py": "def helper():\n    return 2\n\n\nvalue = helper()\n",
    "pkg/sub/__init__.py": "",
    "pkg/sub/use.py": (
        "import pkg.mod\nfrom .. import mod as m\nfrom ..mod import helper as h\n\n\n"
        "def run():\n    # calls ``pkg.mod.helper`` twice\n"
        "    return pkg.mod.helper(1) + m.helper(2) + h(3)\n"
    ),
    "tests/test_mod.py": (
        "from unittest import mock\n\nfrom pkg import helper\n\n\n"
        '@mock.patch("pkg.mod.helper")\ndef test_it(fake):\n    assert helper(1) == 1\n'
    ),
}


def _refs(root: Path, qualname: str) -> list[Reference]:
    project = Project.load(root)
    return find_references(project, resolve_target(project, qualname))


def _at(root: Path, ref: Reference, length: int) -> str:
    line = (root / ref.path).read_text().splitlines()[ref.line - 1]
    return line[ref.column:ref.column + length]


def test_module_function_references_cover_every_form(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", PKG)
    refs = _refs(root, "pkg.helper")
    found = {(r.path, r.line, r.kind) for r in refs}
    assert found == {
        ("pkg/__init__.py", 2, "import"),
        ("pkg/__init__.py", 4, "all"),
        ("pkg/mod.py", 1, "docstring"),
        ("pkg/mod.py", 4, "definition"),
        ("pkg/sub/use.py", 3, "import"),
        ("pkg/sub/use.py", 7, "docstring"),
        ("pkg/sub/use.py", 8, "attribute"),  # pkg.mod.helper and m.helper
        ("pkg/sub/use.py", 8, "name"),  # h(3), the alias
        ("tests/test_mod.py", 3, "import"),
        ("tests/test_mod.py", 6, "string"),
        ("tests/test_mod.py", 8, "name"),
    }
    # Every position points at the identifier itself (the alias `h` is a use, named `h`).
    assert {_at(root, r, 6) for r in refs if r.path != "pkg/sub/use.py" or r.kind != "name"} == {
        "helper"}
    assert len([r for r in refs if r.path == "pkg/sub/use.py" and r.kind == "attribute"]) == 2


def test_same_name_elsewhere_and_shadowing_parameter_are_not_references(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", PKG)
    refs = _refs(root, "pkg.mod.helper")
    assert not [r for r in refs if r.path == "pkg/other.py"]
    # `def user(helper): return helper(1)` uses the parameter, not the function.
    assert not [r for r in refs if r.path == "pkg/mod.py" and r.line in (9, 10)]


CLASSES = {
    "app/__init__.py": "",
    "app/store.py": (
        "class Base:\n    def save(self) -> None:\n        pass\n\n\n"
        "class Store(Base):\n    def save(self) -> None:\n        super().save()\n\n\n"
        "class Other:\n    def save(self) -> int:\n        return 1\n"
    ),
    "app/client.py": (
        "from app.store import Other, Store\n\n\nclass Client:\n"
        "    def __init__(self) -> None:\n        self.store = Store()\n\n"
        "    def run(self, obj: Store, other: Other) -> None:\n"
        "        self.store.save()\n        obj.save()\n        other.save()\n"
    ),
}


def test_method_references_resolve_through_instances_with_jedi(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", CLASSES)
    refs = _refs(root, "app.store.Store.save")
    found = {(r.path, r.line, r.kind) for r in refs}
    assert found == {
        ("app/store.py", 2, "definition"),  # Base.save: the hierarchy changes together
        ("app/store.py", 7, "definition"),
        ("app/store.py", 8, "attribute"),  # super().save()
        ("app/client.py", 9, "attribute"),  # self.store.save()
        ("app/client.py", 10, "attribute"),  # obj.save()
    }
    assert {_at(root, r, 4) for r in refs} == {"save"}


def test_unresolvable_attribute_use_is_refused_with_file_and_line(tmp_path: Path) -> None:
    files = dict(CLASSES)
    files["app/loose.py"] = "def flush(thing):\n    thing.save()\n"
    root = make_repo(tmp_path / "repo", files)
    with pytest.raises(OperationError) as info:
        _refs(root, "app.store.Store.save")
    assert "app/loose.py:2" in info.value.message
    assert "cannot tell what .save refers to" in info.value.message


def test_dynamic_access_by_string_is_refused(tmp_path: Path) -> None:
    files = dict(PKG)
    files["pkg/dyn.py"] = 'import pkg.mod\n\nfn = getattr(pkg.mod, "helper")\n'
    root = make_repo(tmp_path / "repo", files)
    with pytest.raises(OperationError) as info:
        _refs(root, "pkg.mod.helper")
    assert "pkg/dyn.py:3" in info.value.message
    assert "getattr" in info.value.message


def test_getattr_in_a_file_that_cannot_reach_the_target_is_ignored(tmp_path: Path) -> None:
    files = dict(PKG)
    files["elsewhere.py"] = 'import json\n\nfn = getattr(json, "helper", None)\n'
    root = make_repo(tmp_path / "repo", files)
    assert _refs(root, "pkg.mod.helper")


def test_keyword_argument_that_cannot_be_attributed_is_refused(tmp_path: Path) -> None:
    files = dict(PKG)
    files["tests/test_more.py"] = (
        "from unittest import mock\n\nimport pkg.mod\n\n\n"
        "def test_multiple():\n"
        '    with mock.patch.multiple("pkg.mod", helper=mock.DEFAULT):\n        pass\n'
    )
    root = make_repo(tmp_path / "repo", files)
    with pytest.raises(OperationError) as info:
        _refs(root, "pkg.mod.helper")
    assert "tests/test_more.py:7" in info.value.message
    assert "keyword argument helper=" in info.value.message


def test_keyword_argument_of_a_function_declaring_it_is_not_a_reference(tmp_path: Path) -> None:
    files = dict(PKG)
    files["pkg/kw.py"] = (
        "import pkg.mod\n\n\ndef call(helper=None):\n    return helper\n\n\n"
        "result = call(helper=1)\n"
    )
    root = make_repo(tmp_path / "repo", files)
    assert not [r for r in _refs(root, "pkg.mod.helper") if r.path == "pkg/kw.py"]


def test_monkeypatch_setattr_on_the_module_is_a_reference(tmp_path: Path) -> None:
    files = dict(PKG)
    files["tests/test_mp.py"] = ("from pkg import mod\n\n\ndef test_mp(monkeypatch):\n"
                                 '    monkeypatch.setattr(mod, "helper", lambda x: 0)\n')
    root = make_repo(tmp_path / "repo", files)
    refs = [r for r in _refs(root, "pkg.mod.helper") if r.path == "tests/test_mp.py"]
    assert [(r.line, r.kind) for r in refs] == [(5, "string")]
    assert _at(root, refs[0], 6) == "helper"


def test_module_loaded_by_importlib_is_refused(tmp_path: Path) -> None:
    files = dict(PKG)
    files["tests/test_dyn.py"] = ("import importlib\n\n\ndef test_dyn():\n"
                                  '    mod = importlib.import_module("pkg.mod")\n'
                                  "    assert mod.helper(1) == 1\n")
    root = make_repo(tmp_path / "repo", files)
    with pytest.raises(OperationError) as info:
        _refs(root, "pkg.mod.helper")
    assert "tests/test_dyn.py:6" in info.value.message
