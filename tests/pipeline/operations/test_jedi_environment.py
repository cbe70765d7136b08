"""Reference finding resolves imports in the repository's environment, never in diffusellm's own."""

from __future__ import annotations

import site
from dataclasses import dataclass
from pathlib import Path

from diffusellm.pipeline.operations.apply import apply_operations
from diffusellm.pipeline.operations.refs.jedi import JediIndex, search_path
from diffusellm.pipeline.project import Project
from diffusellm.pipeline.spec import RenameSymbol
from tests.conftest import make_repo

CORE = "class Store:\n    def fetch(self) -> int:\n        return 1\n"
APP = "from pkg.core import Store\n\n\ndef run(s: Store) -> int:\n    return s.fetch()\n"


def environment_with_a_copy(tmp_path: Path) -> Path:
    """A repository environment where the project itself is installed (a copy of its package)."""
    packages = tmp_path / "env" / "lib" / "python3.11" / "site-packages"
    (packages / "pkg").mkdir(parents=True)
    (packages / "pkg" / "__init__.py").write_text("", encoding="utf-8")
    (packages / "pkg" / "core.py").write_text(CORE, encoding="utf-8")
    return tmp_path / "env" / "bin" / "python"


def test_jedi_searches_the_repository_environment_not_diffusellms(tmp_path: Path) -> None:
    python = environment_with_a_copy(tmp_path)
    found = search_path(str(python))
    assert str(python.parent.parent / "lib" / "python3.11" / "site-packages") in found
    assert not set(site.getsitepackages()) & set(found)
    assert not set(site.getsitepackages()) & set(search_path(None))


def test_a_method_used_through_instances_is_renamed_although_the_project_is_installed(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", {"src/pkg/__init__.py": "", "src/pkg/core.py": CORE, "app.py": APP})
    op = RenameSymbol(op="rename_symbol", target="pkg.core.Store.fetch", new_name="load")
    changes = apply_operations(root, [op], python=str(environment_with_a_copy(tmp_path)))
    assert changes["app.py"] == APP.replace("s.fetch()", "s.load()")
    assert "def load(self)" in (changes["src/pkg/core.py"] or "")


@dataclass
class _Name:
    """What jedi's goto returns, reduced to the fields `outside_copy` reads."""

    module_path: Path | None
    module_name: str
    line: int
    column: int = 0


def test_a_definition_in_an_installed_copy_of_the_repository_is_named(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", {"src/pkg/__init__.py": "", "src/pkg/core.py": CORE, "app.py": APP})
    index = JediIndex(Project.load(root))
    copy = tmp_path / "env" / "pkg" / "core.py"
    assert index.outside_copy(_Name(copy, "pkg.core", 2)) == f"{copy}:2"
    assert index.outside_copy(_Name(tmp_path / "env" / "json" / "__init__.py", "json", 1)) is None
    assert index.outside_copy(_Name(root / "src" / "pkg" / "core.py", "pkg.core", 2)) is None
