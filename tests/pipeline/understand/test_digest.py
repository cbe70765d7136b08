"""Digestion runs on real git repositories: counts, incremental re-digests, bad files."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest

from diffusellm.errors import RepositoryError
from diffusellm.pipeline.project import module_name_for
from diffusellm.pipeline.understand.digest.build import DigestReport, digest_repository
from diffusellm.pipeline.understand.digest.git import blob_id, module_names, python_blobs
from diffusellm.pipeline.understand.graph import KnowledgeGraph
from tests.conftest import git, make_repo

FILES = {
    "app/__init__.py": "",
    "app/models.py": "class User:\n    def save(self):\n        return audit(self)\n\n\n"
                     "def audit(obj):\n    return obj\n",
    "app/views.py": "from app.models import User\n\n\ndef show():\n    return User().save()\n",
    "scripts/tool.py": "import sys\n\nprint(sys.argv)\n",
    "README.md": "# not python\n",
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", FILES)


def digest(repo: Path, db: Path) -> DigestReport:
    return digest_repository(repo, db)


def qualnames(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {str(q) for (q,) in conn.execute("SELECT qualname FROM symbols")}


def test_full_digest_counts_files_and_rows(repo: Path, tmp_path: Path) -> None:
    report = digest(repo, tmp_path / "graph.db")

    assert (report.files_total, report.files_parsed, report.files_reused) == (4, 4, 0)
    assert report.parse_errors == []
    assert (report.skipped_binary, report.skipped_non_utf8, report.files_removed) == (0, 0, 0)
    assert report.symbols == 8  # 4 modules, User, User.save, audit, show
    assert report.imports == 2
    assert report.calls == 4  # audit(self), User(), User().save(), print(...)
    assert {"app", "app.models.User.save", "app.views.show", "tool"} <= qualnames(
        tmp_path / "graph.db")  # scripts/ is no package, so its file is module `tool`

def test_second_run_reuses_everything_and_one_change_reparses_one_file(
        repo: Path, tmp_path: Path) -> None:
    db = tmp_path / "graph.db"
    digest(repo, db)

    unchanged = digest(repo, db)
    (repo / "app/views.py").write_text(FILES["app/views.py"] + "\n\ndef extra():\n    pass\n")
    changed = digest(repo, db)

    assert (unchanged.files_parsed, unchanged.files_reused) == (0, 4)
    assert (changed.files_parsed, changed.files_reused) == (1, 3)
    assert changed.symbols == unchanged.symbols + 1
    assert "app.views.extra" in qualnames(db)


def test_committing_a_worktree_change_does_not_reparse(repo: Path, tmp_path: Path) -> None:
    db = tmp_path / "graph.db"
    (repo / "app/views.py").write_text(FILES["app/views.py"] + "# edited\n")
    digest(repo, db)
    git(repo, "commit", "-qam", "edit")

    report = digest(repo, db)

    assert report.files_parsed == 0  # hash-object's id equals the committed blob's id


def test_untracked_and_removed_files(repo: Path, tmp_path: Path) -> None:
    db = tmp_path / "graph.db"
    digest(repo, db)
    (repo / "app/extra.py").write_text("def added():\n    pass\n")
    (repo / "app/ignored.py").write_text("def hidden():\n    pass\n")
    (repo / ".gitignore").write_text("app/ignored.py\n")
    (repo / "app/views.py").unlink()

    report = digest(repo, db)

    assert (report.files_total, report.files_parsed, report.files_removed) == (4, 1, 1)
    names = qualnames(db)
    assert "app.extra.added" in names
    assert not {"app.views.show", "app.ignored.hidden"} & names
    with KnowledgeGraph(db) as graph:
        assert graph.importers("app.models") == []


def test_new_package_init_renames_modules_and_reparses_them(repo: Path, tmp_path: Path) -> None:
    db = tmp_path / "graph.db"
    digest(repo, db)
    (repo / "scripts/__init__.py").write_text("")

    report = digest(repo, db)

    assert report.files_parsed == 2  # the new __init__.py and scripts/tool.py, now scripts.tool
    assert "scripts.tool" in qualnames(db)
    assert "tool" not in qualnames(db)


def test_syntax_errors_are_reported_not_fatal(repo: Path, tmp_path: Path) -> None:
    (repo / "app/broken.py").write_text("def ok():\n    pass\n\ndef bad(:\n    pass\n")

    report = digest(repo, tmp_path / "graph.db")

    assert [p.path for p in report.parse_errors] == ["app/broken.py"]
    assert report.parse_errors[0].message.startswith("line 4:")
    assert report.files_parsed == 5
    assert "app.broken.ok" in qualnames(tmp_path / "graph.db")
    assert "app.models.audit" in qualnames(tmp_path / "graph.db")
    # The problem stays reported while the file is unchanged, though it is not re-read.
    again = digest(repo, tmp_path / "graph.db")
    assert (again.files_parsed, [p.path for p in again.parse_errors]) == (0, ["app/broken.py"])


def test_binary_and_non_utf8_files_are_skipped_and_counted(repo: Path, tmp_path: Path) -> None:
    (repo / "app/blob.py").write_bytes(b"x = 1\0\0\0")
    (repo / "app/latin.py").write_bytes("# caf\xe9\nx = 1\n".encode("latin-1"))
    db = tmp_path / "graph.db"

    first = digest(repo, db)
    second = digest(repo, db)

    for report in (first, second):
        assert (report.skipped_binary, report.skipped_non_utf8) == (1, 1)
    assert (first.files_total, first.files_parsed) == (6, 4)
    assert second.files_parsed == 0
    assert not any(name.startswith(("app.blob", "app.latin")) for name in qualnames(db))


def test_progress_reports_files_done_out_of_files_to_read(repo: Path, tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []

    digest_repository(repo, tmp_path / "graph.db", progress=lambda done, total: seen.append(
        (done, total)))

    assert seen == [(4, 4)]


def test_graph_uses_wal_and_rebuilds_a_database_of_another_version(
        repo: Path, tmp_path: Path) -> None:
    db = tmp_path / "graph.db"
    digest(repo, db)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.execute("UPDATE meta SET value = 'old' WHERE key = 'schema'")

    report = digest(repo, db)

    assert report.files_parsed == 4


def test_a_corrupt_database_is_reported_with_a_way_out(repo: Path, tmp_path: Path) -> None:
    db = tmp_path / "graph.db"
    db.write_bytes(b"this is not sqlite" * 100)

    with pytest.raises(RepositoryError, match="cannot open the knowledge graph") as raised:
        digest(repo, db)

    assert "delete the file" in raised.value.hint


def test_a_plain_directory_is_digested_with_gits_blob_ids(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    (plain / "lib").mkdir(parents=True)
    (plain / "lib/__init__.py").write_text("")
    (plain / "lib/core.py").write_text("def f():\n    return 1\n")
    (plain / ".venv/lib").mkdir(parents=True)
    (plain / ".venv/lib/skip.py").write_text("def g():\n    pass\n")
    expected = subprocess.run(["git", "hash-object", "lib/core.py"], cwd=plain, check=True,
                              capture_output=True, text=True).stdout.strip()

    blobs = python_blobs(plain)
    report = digest(plain, tmp_path / "graph.db")

    assert blobs == {"lib/__init__.py": blob_id(b""), "lib/core.py": expected}
    assert report.files_total == 2
    assert "lib.core.f" in qualnames(tmp_path / "graph.db")
    assert digest(plain, tmp_path / "graph.db").files_parsed == 0


def test_module_names_agree_with_the_refactor_operations(tmp_path: Path) -> None:
    paths = ["top.py", "__init__.py", "a/__init__.py", "a/b/__init__.py", "a/b/c.py",
             "a/loose/d.py", "a/loose/e/__init__.py", "a/loose/e/f.py", "src/pkg/__init__.py",
             "src/pkg/mod.py"]
    for rel in paths:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")

    names = module_names(tmp_path, paths)

    assert names == {p: module_name_for(tmp_path, p) or "__init__" for p in paths}
    assert names["a/loose/e/f.py"] == "e.f"
    assert names["src/pkg/mod.py"] == "pkg.mod"
