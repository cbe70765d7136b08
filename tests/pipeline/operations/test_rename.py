"""Tests for rename_symbol on small packages and on the real humanize sdist."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from diffusellm.errors import OperationError
from diffusellm.pipeline.operations.parameters.change import apply_add_parameter
from diffusellm.pipeline.operations.rename.symbol import apply_rename
from diffusellm.pipeline.project import Project
from diffusellm.pipeline.spec import AddParameter, RenameSymbol
from tests.conftest import make_repo, unpack_sdist

INIT = '"""Package."""\nfrom pkg.mod import helper\n\n__all__ = ["helper"]\n'
MOD = '''"""Helpers; see `helper` and ``pkg.mod.helper()``."""


def helper(x):  # keep this comment
    """Return x.

    >>> helper(2)
    2
    """
    return x


def user(helper):
    return helper(1)
'''
OTHER = "def helper():\n    return 2\n\n\nvalue = helper()\n"
USE = '''import pkg.mod
from .. import mod as m
from ..mod import helper as h


def run():
    # calls `helper`, ``pkg.mod.helper`` twice
    return pkg.mod.helper(1) + m.helper(2) + h(3)
'''
TEST = '''from unittest import mock

from pkg import helper


@mock.patch("pkg.mod.helper")
def test_it(fake):
    assert helper(1) == 1
'''
PKG = {"pkg/__init__.py": INIT, "pkg/mod.py": MOD, "pkg/other.py": OTHER, "pkg/sub/__init__.py": "",
       "pkg/sub/use.py": USE, "tests/test_mod.py": TEST}


def _rename(root: Path, target: str, new: str) -> Project:
    project = Project.load(root)
    apply_rename(project, RenameSymbol(op="rename_symbol", target=target, new_name=new))
    return project


def _write(root: Path, project: Project) -> None:
    for rel, text in project.changes().items():
        assert text is not None
        (root / rel).write_text(text, encoding="utf-8")


def _refused(root: Path, target: str, new: str) -> OperationError:
    project = Project.load(root)
    with pytest.raises(OperationError) as info:
        apply_rename(project, RenameSymbol(op="rename_symbol", target=target, new_name=new))
    assert project.changes() == {}
    return info.value


def test_module_function_renamed_everywhere_byte_for_byte(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", PKG)
    changes = _rename(root, "pkg.helper", "assist").changes()
    assert changes == {
        "pkg/__init__.py": INIT.replace("helper", "assist"),
        "pkg/mod.py": MOD.replace("`helper`", "`assist`").replace("mod.helper()", "mod.assist()")
        .replace("def helper(x)", "def assist(x)").replace(">>> helper(2)", ">>> assist(2)"),
        # The bare `helper` in use.py's comment names nothing there (it imports `h`): kept.
        "pkg/sub/use.py": USE.replace(".helper", ".assist")
        .replace("import helper as h", "import assist as h"),
        "tests/test_mod.py": TEST.replace("helper", "assist"),
    }
    # The parameter `helper` of `user` and pkg/other.py's own helper are untouched.
    assert "def user(helper):\n    return helper(1)\n" in str(changes["pkg/mod.py"])


def test_renamed_package_still_imports_and_runs(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", PKG)
    _write(root, _rename(root, "pkg.mod.helper", "assist"))
    code = "import pkg, pkg.sub.use as u; print(pkg.assist(5), u.run())"
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                          check=True)
    assert done.stdout.split() == ["5", "6"]


def test_clash_with_existing_name_is_refused(tmp_path: Path) -> None:
    files = dict(PKG)
    files["pkg/mod.py"] = MOD + "\n\ndef assist():\n    return 0\n"
    root = make_repo(tmp_path / "repo", files)
    error = _refused(root, "pkg.mod.helper", "assist")
    assert "'assist' already exists" in error.message
    assert "pkg/mod.py" in error.message


def test_clash_in_a_module_importing_the_target_is_refused(tmp_path: Path) -> None:
    files = dict(PKG)
    files["tests/test_mod.py"] = TEST + "\n\ndef assist():\n    return 0\n"
    root = make_repo(tmp_path / "repo", files)
    error = _refused(root, "pkg.mod.helper", "assist")
    assert "tests/test_mod.py" in error.message


def test_local_name_that_would_capture_a_use_is_refused(tmp_path: Path) -> None:
    files = dict(PKG)
    files["pkg/cap.py"] = ("from pkg.mod import helper\n\n\n"
                           "def f(assist):\n    return helper(assist)\n")
    root = make_repo(tmp_path / "repo", files)
    error = _refused(root, "pkg.mod.helper", "assist")
    assert "pkg/cap.py:5" in error.message


def test_submodule_of_reexporting_package_is_a_clash(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", PKG)
    error = _refused(root, "pkg.mod.helper", "sub")
    assert "module pkg.sub" in error.message


def test_dynamic_access_and_keywords_are_refused(tmp_path: Path) -> None:
    files = dict(PKG)
    files["pkg/dyn.py"] = 'from pkg import mod\n\nfn = getattr(mod, "helper")\n'
    root = make_repo(tmp_path / "repo", files)
    assert "pkg/dyn.py:3" in _refused(root, "pkg.mod.helper", "assist").message
    project = Project.load(root)
    unchecked = RenameSymbol.model_construct(op="rename_symbol", target="pkg.mod.helper",
                                             new_name="class")
    with pytest.raises(OperationError, match="keyword"):
        apply_rename(project, unchecked)
    assert project.changes() == {}


CLASSES = {
    "app/__init__.py": "",
    "app/store.py": '''class Base:
    def save(self) -> None:
        """Subclasses override `save`."""


class Store(Base):
    def save(self) -> None:
        super().save()


class Other:
    def save(self) -> int:
        return 1
''',
    "app/client.py": '''from app.store import Other, Store


class Client:
    def __init__(self) -> None:
        self.store = Store()

    def run(self, obj: Store, other: Other) -> int:
        self.store.save()
        obj.save()
        return other.save()
''',
}


def test_method_renamed_through_instances_and_hierarchy(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", CLASSES)
    changes = _rename(root, "app.store.Store.save", "persist").changes()
    store, client = str(changes["app/store.py"]), str(changes["app/client.py"])
    assert store.count("def persist(self)") == 2
    assert "super().persist()" in store and "override `persist`" in store
    assert "def save(self) -> int" in store  # Other.save is another method
    assert "self.store.persist()" in client and "obj.persist()" in client
    assert "other.save()" in client


def test_method_with_unresolvable_use_is_refused_with_location(tmp_path: Path) -> None:
    files = dict(CLASSES)
    files["app/loose.py"] = "def flush(thing):\n    thing.save()\n"
    root = make_repo(tmp_path / "repo", files)
    error = _refused(root, "app.store.Store.save", "persist")
    assert "app/loose.py:2" in error.message


def test_method_clash_in_hierarchy_is_refused(tmp_path: Path) -> None:
    files = dict(CLASSES)
    files["app/store.py"] += ("\n\nclass Cached(Store):\n"
                              "    def persist(self) -> None:\n        pass\n")
    root = make_repo(tmp_path / "repo", files)
    assert "Cached" in _refused(root, "app.store.Store.save", "persist").message


def test_override_of_external_base_method_is_refused(tmp_path: Path) -> None:
    files = {"app/__init__.py": "", "app/d.py": "class Box(dict):\n    def get(self, key):\n"
             "        return 1\n"}
    root = make_repo(tmp_path / "repo", files)
    error = _refused(root, "app.d.Box.get", "fetch")
    assert error.message.startswith("app.d.Box.get overrides get of dict, a base class outside")
    assert "app/d.py:1" in error.message and "keep the name get" in error.hint


def test_class_rename_updates_string_annotations_and_subclasses(tmp_path: Path) -> None:
    files = dict(CLASSES)
    files["app/extra.py"] = (
        "from __future__ import annotations\n\nfrom app import store\n\n\n"
        'def make() -> "store.Store":\n    return store.Store()\n\n\n'
        "class Sub(store.Store):\n    pass\n"
    )
    root = make_repo(tmp_path / "repo", files)
    changes = _rename(root, "app.store.Store", "Repository").changes()
    extra = str(changes["app/extra.py"])
    assert '-> "store.Repository"' in extra and "return store.Repository()" in extra
    assert "class Sub(store.Repository)" in extra
    assert "obj: Repository, other: Other" in str(changes["app/client.py"])


def test_humanize_naturalsize_rename_passes_its_own_tests(tmp_path: Path) -> None:
    root = unpack_sdist("humanize-4.17.0", tmp_path)
    project = _rename(root, "humanize.naturalsize", "natural_size")
    changed = set(project.changes())
    assert {"src/humanize/__init__.py", "src/humanize/filesize.py", "tests/test_filesize.py",
            "tests/test_i18n.py", "tests/test_benchmarks.py"} == changed
    _write(root, project)
    word = re.compile(r"\bnaturalsize\b")
    for path in [*root.joinpath("src").rglob("*.py"), *root.joinpath("tests").rglob("*.py")]:
        assert not word.search(path.read_text(encoding="utf-8")), path
    env = {**os.environ, "PYTHONPATH": "src"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_filesize.py",
         "src/humanize/filesize.py"],
        cwd=root, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" in done.stdout


def test_property_renamed_where_jedi_resolves_its_uses(tmp_path: Path) -> None:
    files = {"app/__init__.py": "", "app/box.py": (
        "class Box:\n    @property\n    def size(self) -> int:\n        return 1\n\n\n"
        "def show(box: Box) -> int:\n    return box.size + Box().size\n")}
    root = make_repo(tmp_path / "repo", files)
    box = str(_rename(root, "app.box.Box.size", "capacity").changes()["app/box.py"])
    assert "def capacity(self)" in box and "return box.capacity + Box().capacity" in box


def test_pytest_fixture_rename_is_refused(tmp_path: Path) -> None:
    files = {"tests/__init__.py": "", "tests/conftest.py": (
        "import pytest\n\n\n@pytest.fixture\ndef client():\n    return 1\n")}
    root = make_repo(tmp_path / "repo", files)
    assert "pytest fixture" in _refused(root, "tests.conftest.client", "api").message


def test_inherited_twice_from_unrelated_definitions_is_refused(tmp_path: Path) -> None:
    files = {"app/__init__.py": "", "app/m.py": (
        "class Store:\n    def save(self):\n        pass\n\n\nclass Mixin:\n    def save(self):\n"
        "        pass\n\n\nclass Both(Store, Mixin):\n    pass\n")}
    root = make_repo(tmp_path / "repo", files)
    assert "also defined in app.m.Mixin" in _refused(root, "app.m.Store.save", "persist").message


def test_method_rename_sees_edits_of_an_earlier_operation(tmp_path: Path) -> None:
    files = dict(CLASSES)
    files["app/store.py"] = "def tool(\n    a,\n):\n    return a\n\n\n" + files["app/store.py"]
    root = make_repo(tmp_path / "repo", files)
    project = Project.load(root)
    apply_add_parameter(project, AddParameter(op="add_parameter", target="app.store.tool",
                                              name="b", default="0"))
    # The signature grew by two lines in the overlay only; jedi must see the overlay, not disk.
    apply_rename(project, RenameSymbol(op="rename_symbol", target="app.store.Store.save",
                                       new_name="persist"))
    client = str(project.changes()["app/client.py"])
    assert "self.store.persist()" in client and "obj.persist()" in client


@pytest.mark.parametrize(("rel", "declaration"), [
    ("pyproject.toml", '[project]\nname = "tool"\n\n[project.scripts]\ntool = "pkg.cli:main"\n'),
    ("setup.cfg", "[metadata]\nname = tool\n\n[options.entry_points]\nconsole_scripts =\n"
                  "    tool = pkg.cli : main\n"),
])
def test_an_entry_point_is_never_renamed_or_moved_behind_its_declaration(
        tmp_path: Path, rel: str, declaration: str) -> None:
    from diffusellm.pipeline.operations.move.symbol import apply_move
    from diffusellm.pipeline.spec import MoveSymbol

    root = make_repo(tmp_path / "r", {
        "pkg/__init__.py": "", rel: declaration,
        "pkg/cli.py": "def main() -> None:\n    print(helper())\n\n\ndef helper() -> str:\n    return 'x'\n",
    })
    line = declaration.splitlines().index(next(x for x in declaration.splitlines() if "pkg.cli" in x)) + 1
    for change in (lambda p: apply_rename(p, RenameSymbol(op="rename_symbol", target="pkg.cli.main",
                                                          new_name="run")),
                   lambda p: apply_move(p, MoveSymbol(op="move_symbol", target="pkg.cli.main",
                                                      to_module="pkg.entry"))):
        project = Project.load(root)
        with pytest.raises(OperationError, match=rf"entry point declared at {re.escape(rel)}:{line}"):
            change(project)
        assert project.changes() == {}
    project = Project.load(root)  # what the declaration does not name is free to change
    apply_rename(project, RenameSymbol(op="rename_symbol", target="pkg.cli.helper", new_name="text"))
    assert "def text()" in project.changes()["pkg/cli.py"]


def test_forward_references_in_typevars_are_renamed_but_plain_strings_are_not(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", {
        "pkg/__init__.py": "",
        "pkg/m.py": 'import typing\nfrom typing import ForwardRef, TypeVar\n\n'
                    'S = TypeVar("S", bound="Spec")\nC = typing.TypeVar("C", "Spec", "int")\n'
                    'R = ForwardRef("Spec")\nLABEL = "Spec"\n\n\nclass Spec:\n'
                    '    def copy(self: S) -> S:\n        return self\n',
    })
    project = Project.load(root)
    apply_rename(project, RenameSymbol(op="rename_symbol", target="pkg.m.Spec", new_name="Plan"))
    text = project.changes()["pkg/m.py"]
    assert 'TypeVar("S", bound="Plan")' in text and 'TypeVar("C", "Plan", "int")' in text
    assert 'ForwardRef("Plan")' in text and 'LABEL = "Spec"' in text and "class Plan:" in text


def test_overloaded_functions_are_one_target_and_every_signature_is_renamed(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", {
        "pkg/__init__.py": "",
        "pkg/m.py": "from typing import overload\n\n\n@overload\ndef pick(x: int) -> int: ...\n"
                    "@overload\ndef pick(x: str) -> str: ...\ndef pick(x):\n    return x\n\n\n"
                    "def twice() -> int:\n    return 2\n\n\ndef twice() -> int:  # noqa: F811\n"
                    "    return 3\n",
        "use.py": "from pkg.m import pick\n\nprint(pick(1), pick('a'))\n",
    })
    project = Project.load(root)
    apply_rename(project, RenameSymbol(op="rename_symbol", target="pkg.m.pick", new_name="choose"))
    changed = project.changes()
    assert changed["pkg/m.py"].count("def choose(") == 3 and "def pick(" not in changed["pkg/m.py"]
    assert "from pkg.m import choose" in changed["use.py"]
    with pytest.raises(OperationError, match="ambiguous"):  # two real definitions stay refused
        apply_rename(Project.load(root), RenameSymbol(op="rename_symbol", target="pkg.m.twice",
                                                      new_name="double"))
