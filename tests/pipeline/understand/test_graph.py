"""Knowledge graph queries over a real digested git repository: definitions, callers, tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from diffusellm.errors import RepositoryError
from diffusellm.pipeline.understand.digest import reach as digest_reach
from diffusellm.pipeline.understand.digest.build import digest_repository
from diffusellm.pipeline.understand.graph import KnowledgeGraph, SymbolRow
from tests.conftest import git, make_repo

PACKAGE = {
    "pkg/__init__.py": "from .core import helper\nfrom . import util\n",
    "pkg/util.py": (
        "def slug(text):\n    return text.lower()\n\n\n"
        "def clean(text):\n    return text.strip()\n"
    ),
    "pkg/core.py": (
        '"""Core."""\n'
        "import pkg.util as u\n"
        "from pkg.util import slug as make_slug\n\n\n"
        "def helper(x):\n    return make_slug(x) + u.clean(x)\n\n\n"
        "class Engine:\n"
        "    def run(self):\n        return self.step()\n\n"
        "    def step(self):\n        return helper('a')\n"
    ),
    "pkg/base.py": "class Base:\n    def start(self):\n        return 1\n",
    "pkg/child.py": (
        "from .base import Base\n\n\n"
        "class Child(Base):\n    def go(self):\n        return self.start()\n"
    ),
    "pkg/lonely.py": "def unused():\n    return 0\n",
    "tests/test_core.py": (
        "from pkg import helper\n\n\ndef test_helper():\n    assert helper('A')\n"
    ),
    "tests/test_engine.py": (
        "from pkg.core import Engine\n\n\ndef test_run():\n    assert Engine().run()\n"
    ),
    "tests/test_util.py": (
        "import pkg.util\n\n\ndef test_clean():\n    assert pkg.util.clean(' a ') == 'a'\n"
    ),
    "tests/test_child.py": (
        "from pkg.child import Child\n\n\ndef test_go():\n    assert Child().go() == 1\n"
    ),
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", PACKAGE)


def open_graph(repo: Path, db: Path) -> KnowledgeGraph:
    digest_repository(repo, db)
    return KnowledgeGraph(db)


@pytest.fixture
def graph(repo: Path, tmp_path: Path) -> Iterator[KnowledgeGraph]:
    with open_graph(repo, tmp_path / "graph.db") as opened:
        yield opened


def names(rows: list[SymbolRow]) -> list[str]:
    return [r.qualname for r in rows]


def test_definitions_by_qualname_bare_name_reexport_and_suffix(graph: KnowledgeGraph) -> None:
    helper = graph.definitions("pkg.core.helper")

    assert helper == [SymbolRow("pkg.core.helper", "function", "pkg/core.py", 6, 7, "(x)")]
    assert graph.definitions("helper") == helper
    assert graph.definitions("pkg.helper") == helper  # re-exported by pkg/__init__.py
    assert names(graph.definitions("Engine.run")) == ["pkg.core.Engine.run"]
    assert names(graph.definitions("pkg.util")) == ["pkg.util"]
    assert graph.definitions("nothing_like_this") == []


def test_callers_include_calls_through_aliases(graph: KnowledgeGraph) -> None:
    assert names(graph.callers("pkg.core.helper")) == [
        "pkg.core.Engine.step", "test_core.test_helper"]
    assert names(graph.callers("pkg.helper")) == names(graph.callers("pkg.core.helper"))
    assert names(graph.callers("pkg.util.slug")) == ["pkg.core.helper"]
    assert names(graph.callers("pkg.util.clean")) == ["pkg.core.helper", "test_util.test_clean"]
    assert graph.callers("pkg.lonely.unused") == []


def test_callers_of_inherited_methods_and_constructors(graph: KnowledgeGraph) -> None:
    assert names(graph.callers("pkg.base.Base.start")) == ["pkg.child.Child.go"]
    assert names(graph.callers("pkg.core.Engine.__init__")) == ["test_engine.test_run"]


def test_callees_follow_imports_self_and_inheritance(graph: KnowledgeGraph) -> None:
    assert graph.callees("pkg.core.helper") == ["pkg.util.slug", "pkg.util.clean"]
    assert graph.callees("pkg.core.Engine.run") == ["pkg.core.Engine.step"]
    assert graph.callees("pkg.child.Child.go") == ["pkg.base.Base.start"]
    assert graph.callees("test_core.test_helper") == ["pkg.core.helper"]
    assert graph.callees("pkg.lonely.unused") == []


def test_importers_of_a_module(graph: KnowledgeGraph) -> None:
    assert graph.importers("pkg.util") == ["pkg/__init__.py", "pkg/core.py", "tests/test_util.py"]
    assert graph.importers("pkg.base") == ["pkg/child.py"]
    assert graph.importers("pkg.lonely") == []


def test_tests_reaching_direct_and_transitive_callers(graph: KnowledgeGraph) -> None:
    assert graph.tests_reaching(["pkg.util.clean"], []) == [
        "tests/test_core.py", "tests/test_engine.py", "tests/test_util.py"]
    # slug ← helper ← (test_helper, Engine.step ← Engine ← test_run)
    assert graph.tests_reaching(["pkg.util.slug"], []) == [
        "tests/test_core.py", "tests/test_engine.py"]
    assert graph.tests_reaching(["pkg.base.Base.start"], []) == ["tests/test_child.py"]


def test_tests_reaching_changed_files_follow_the_import_graph(graph: KnowledgeGraph) -> None:
    assert graph.tests_reaching([], ["pkg/child.py"]) == ["tests/test_child.py"]
    assert graph.tests_reaching([], ["tests/test_util.py"]) == ["tests/test_util.py"]
    # pkg/util.py is imported by pkg/__init__.py, so every importer of the package reaches it.
    assert graph.tests_reaching([], ["pkg/util.py"]) == [
        "tests/test_child.py", "tests/test_core.py", "tests/test_engine.py", "tests/test_util.py"]


def test_tests_reaching_is_none_when_it_cannot_vouch(graph: KnowledgeGraph) -> None:
    assert graph.tests_reaching(["pkg.lonely.unused"], []) is None  # no test connects
    assert graph.tests_reaching(["nowhere.at.all"], []) is None  # unknown target
    assert graph.tests_reaching([], ["setup.cfg"]) is None  # non-Python change
    assert graph.tests_reaching([], []) is None
    # slug needs three steps back to reach a test; with one allowed, more lies beyond.
    assert graph.tests_reaching(["pkg.util.slug"], [], max_depth=1) is None


def test_tests_reaching_gives_up_when_the_walk_grows_too_wide(
        graph: KnowledgeGraph, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(digest_reach, "MAX_NODES", 2)

    assert graph.tests_reaching(["pkg.util.slug"], []) is None


def test_a_new_name_in_a_known_module_stands_for_its_module(graph: KnowledgeGraph) -> None:
    assert graph.tests_reaching(["pkg.child.Child.brand_new"], []) == ["tests/test_child.py"]


def test_conftest_reaching_a_target_selects_the_tests_under_it(repo: Path, tmp_path: Path) -> None:
    (repo / "tests/conftest.py").write_text(
        "import pytest\nfrom pkg.lonely import unused\n\n\n"
        "@pytest.fixture\ndef zero():\n    return unused()\n")

    with open_graph(repo, tmp_path / "graph.db") as graph:
        selected = graph.tests_reaching(["pkg.lonely.unused"], [])

    assert selected == ["tests/test_child.py", "tests/test_core.py", "tests/test_engine.py",
                        "tests/test_util.py"]


def test_a_test_loading_modules_by_computed_name_makes_selection_uncertain(
        repo: Path, tmp_path: Path) -> None:
    (repo / "tests/test_plugins.py").write_text(
        "import importlib\n\n\ndef test_all():\n"
        "    for name in ('pkg.lonely',):\n        importlib.import_module(name)\n")

    with open_graph(repo, tmp_path / "graph.db") as graph:
        assert graph.tests_reaching(["pkg.base.Base.start"], []) is None


def test_graph_follows_the_repository_after_a_commit(repo: Path, tmp_path: Path) -> None:
    db = tmp_path / "graph.db"
    digest_repository(repo, db)
    (repo / "pkg/lonely.py").write_text(
        "from pkg.util import slug\n\n\ndef unused():\n    return slug('x')\n")
    git(repo, "commit", "-qam", "use slug")

    with open_graph(repo, db) as graph:
        assert names(graph.callers("pkg.util.slug")) == ["pkg.core.helper", "pkg.lonely.unused"]


def test_opening_a_missing_or_foreign_database_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(RepositoryError, match="no knowledge graph") as missing:
        KnowledgeGraph(tmp_path / "absent.db")
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite" * 100)

    for foreign in (empty, garbage):
        with pytest.raises(RepositoryError, match="not a knowledge graph"):
            KnowledgeGraph(foreign)
    assert "digest" in missing.value.hint
