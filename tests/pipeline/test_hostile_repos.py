"""Hostile repositories: links out of the work copy, .git/ paths and odd encodings never reach outside."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from diffusellm.errors import OperationError
from diffusellm.pipeline.operations.apply import apply_operations, write_changes
from diffusellm.pipeline.paths import UnsafePathError, read_file
from diffusellm.pipeline.project import Project
from diffusellm.pipeline.spec import (
    AddParameter,
    AddTest,
    MoveSymbol,
    Operation,
    RemoveParameter,
    RenameSymbol,
)
from diffusellm.pipeline.workspace import create_worktree, git_out
from tests.conftest import git, make_repo

MARKER = "DECOY-SECRET-7f3a"
DECOY = {
    "secret.py": (
        '"""Host file."""\n\nfrom pkg.helpers import get_flag\n\n\n'
        f'class Secret:\n    """Holds a key."""\n\n    key = "{MARKER}"\n\n\n'
        "def check() -> bool:\n    return get_flag({}, legacy=True)\n"
    ),
    "extpkg/__init__.py": f'"""{MARKER}"""\n',
    "extpkg/mod.py": f'VALUE = "{MARKER}"\n',
    "tests/keep.txt": "kept\n",
}
REPO = {
    "pkg/__init__.py": '"""Package."""\n',
    "pkg/helpers.py": (
        '"""Helpers."""\n\n\ndef get_flag(env: dict[str, str], legacy: bool = False) -> bool:\n'
        '    """Read the flag."""\n    return env.get("FLAG") == "1"\n'
    ),
    "pkg/app.py": (
        '"""App."""\n\nfrom pkg.helpers import get_flag\n\n\ndef main() -> bool:\n'
        '    """Entry."""\n    return get_flag({"FLAG": "1"})\n'
    ),
    "tests/test_app.py": "from pkg.app import main\n\n\ndef test_main() -> None:\n    assert main()\n",
}
LATIN1 = (
    "# -*- coding: latin-1 -*-\n"
    '"""Legacy: café."""\n\nfrom pkg.helpers import get_flag\n\nNAME = "naïve"\n\n\n'
    "def legacy() -> bool:\n    return get_flag({})\n"
)


def snapshot(folder: Path) -> dict[str, bytes | str]:
    """Every entry under `folder`: file bytes, or where a link points."""
    found: dict[str, bytes | str] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_symlink():
            found[rel] = f"-> {os.readlink(path)}"
        elif path.is_file():
            found[rel] = path.read_bytes()
    return found


def hostile_repo(tmp_path: Path, *, absolute: bool = False) -> tuple[Path, Path]:
    """A repository whose tracked links point at a decoy folder outside it; (repo, decoy).

    `absolute` links reach the decoy from any copy of the repository (a run's work copy too).
    """
    decoy = make_repo(tmp_path / "decoy", DECOY)
    repo = make_repo(tmp_path / "repo", REPO)
    up = f"{tmp_path}/" if absolute else "../"
    (repo / "pkg" / "linked.py").symlink_to(f"{'' if absolute else '../'}{up}decoy/secret.py")  # a file
    (repo / "tests_link").symlink_to(f"{up}decoy/tests")  # a folder
    (repo / "extpkg").symlink_to(f"{up}decoy/extpkg")  # a package
    (repo / "pkg" / "dangling.py").symlink_to(f"{'' if absolute else '../'}{up}decoy/planted.py")  # to nothing yet
    (repo / "pkg" / "legacy.py").write_bytes(LATIN1.encode("latin-1"))
    (repo / "pkg" / "broken.py").write_bytes(b'"""Not text: \xff\xfe."""\nX = 1\n')
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Links out")
    return repo, decoy


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[Path, Path]:
    return hostile_repo(tmp_path)


def run_ops(repo: Path, *ops: Operation) -> dict[str, str | None]:
    """Apply and write the operations, as a run does on its work copy."""
    changes = apply_operations(repo, list(ops))
    write_changes(repo, changes)
    return changes


def assert_clean(changes: dict[str, str | None], decoy: Path, before: dict[str, bytes | str]) -> None:
    assert snapshot(decoy) == before, "a file outside the work copy changed"
    assert not any(MARKER in (text or "") for text in changes.values()), "outside content reached the change"
    assert not {"pkg/linked.py", "pkg/dangling.py"} & set(changes)
    assert not any(rel.startswith(("tests_link/", "extpkg/", ".git/")) for rel in changes)


def test_links_are_left_out_of_the_project(hostile: tuple[Path, Path]) -> None:
    repo, _ = hostile
    project = Project.load(repo)
    assert "pkg/linked.py" not in project.files and "pkg/dangling.py" not in project.files
    assert not any(f.startswith(("extpkg/", "tests_link/")) for f in project.files)
    assert "pkg.linked" not in project.modules and "pkg/legacy.py" in project.files
    assert set(project.undecodable) == {"pkg/broken.py"}
    with pytest.raises(UnsafePathError, match="pkg/linked.py is a symbolic link"):
        project.read("pkg/linked.py")


def test_rename_updates_the_repository_and_nothing_behind_links(hostile: tuple[Path, Path]) -> None:
    repo, decoy = hostile
    before = snapshot(decoy)
    changes = run_ops(repo, RenameSymbol(op="rename_symbol", target="pkg.helpers.get_flag", new_name="get_mode"))
    assert_clean(changes, decoy, before)
    assert set(changes) == {"pkg/helpers.py", "pkg/app.py", "pkg/legacy.py"}
    # The PEP 263 file was read in its declared encoding and written back in it.
    legacy = (repo / "pkg" / "legacy.py").read_bytes()
    assert legacy.decode("latin-1") == LATIN1.replace("get_flag", "get_mode")
    assert (repo / "pkg" / "broken.py").read_bytes().startswith(b'"""Not text: \xff')


def test_operations_that_need_a_link_refuse_naming_it(hostile: tuple[Path, Path]) -> None:
    repo, decoy = hostile
    before = snapshot(decoy)
    refusals: list[tuple[Operation, str]] = [
        (RenameSymbol(op="rename_symbol", target="pkg.linked.Secret", new_name="Open"), "pkg/linked.py"),
        (MoveSymbol(op="move_symbol", target="pkg.linked.Secret", to_module="pkg.stolen"), "pkg/linked.py"),
        (MoveSymbol(op="move_symbol", target="pkg.helpers.get_flag", to_module="extpkg.newmod"), "extpkg"),
        (MoveSymbol(op="move_symbol", target="pkg.helpers.get_flag", to_module="pkg.dangling"), "pkg/dangling.py"),
        (AddTest(op="add_test", target="pkg.helpers.get_flag", path="tests_link/test_planted.py",
                 source="def test_planted() -> None:\n    assert True\n"), "tests_link"),
    ]
    for op, link in refusals:
        with pytest.raises(OperationError, match=f"{link} is a symbolic link") as caught:
            run_ops(repo, op)
        assert caught.value.exit_code == 2
    assert snapshot(decoy) == before
    assert not (decoy / "planted.py").exists() and not (decoy / "extpkg" / "newmod.py").exists()
    assert git(repo, "status", "--porcelain") == ""


def test_an_add_test_path_inside_git_is_refused(hostile: tuple[Path, Path]) -> None:
    repo, _ = hostile
    for path in (".git/hooks/test_x.py", "tests/.git/test_x.py"):
        op = AddTest(op="add_test", target="pkg.helpers.get_flag", path=path,
                     source="def test_x() -> None:\n    assert True\n")
        with pytest.raises(OperationError) as caught:
            run_ops(repo, op)
        assert caught.value.exit_code == 2 and f"{path!r} is inside .git/" in caught.value.message
    assert not (repo / ".git" / "hooks" / "test_x.py").exists()


def test_parameter_and_move_operations_stay_inside(hostile: tuple[Path, Path]) -> None:
    repo, decoy = hostile
    before = snapshot(decoy)
    added = run_ops(repo, AddParameter(op="add_parameter", target="pkg.helpers.get_flag", name="strict",
                                       default="False", annotation="bool"))
    assert_clean(added, decoy, before)
    # The only call passing `legacy` is in the decoy: removing it must not rewrite that file.
    removed = run_ops(repo, RemoveParameter(op="remove_parameter", target="pkg.helpers.get_flag", name="legacy"))
    assert_clean(removed, decoy, before)
    moved = run_ops(repo, MoveSymbol(op="move_symbol", target="pkg.helpers.get_flag", to_module="pkg.flags"))
    assert_clean(moved, decoy, before)
    assert "def get_flag(" in (repo / "pkg" / "flags.py").read_text()
    added_test = run_ops(repo, AddTest(op="add_test", target="pkg.flags.get_flag", path="tests/test_flags.py",
                                       source="def test_flag() -> None:\n    assert not get_flag({})\n"))
    assert_clean(added_test, decoy, before)
    assert "from pkg.flags import get_flag" in (repo / "tests" / "test_flags.py").read_text()


def test_a_rename_needing_an_undecodable_file_refuses_with_the_reason(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", REPO)
    (repo / "pkg" / "odd.py").write_bytes(b"from pkg.helpers import get_flag\nS = '\xe9'\n")
    needing: list[Operation] = [
        RenameSymbol(op="rename_symbol", target="pkg.helpers.get_flag", new_name="x"),
        RemoveParameter(op="remove_parameter", target="pkg.helpers.get_flag", name="legacy"),
        MoveSymbol(op="move_symbol", target="pkg.helpers.get_flag", to_module="pkg.flags"),
    ]
    for op in needing:
        with pytest.raises(OperationError, match=r"pkg/odd.py may use the target but cannot be decoded: it is not valid"):
            apply_operations(repo, [op])


def test_write_changes_checks_every_path_before_writing_any(hostile: tuple[Path, Path]) -> None:
    repo, decoy = hostile
    before = snapshot(decoy)
    for bad in ("tests_link/sitecustomize.py", "extpkg/sitecustomize.py", "pkg/dangling.py",
                ".git/config", "../outside.py"):
        with pytest.raises(UnsafePathError):
            write_changes(repo, {"aaa_first.py": "x = 1\n", bad: "import os\n"})
        assert not (repo / "aaa_first.py").exists(), "nothing is written when one path is refused"
    assert snapshot(decoy) == before and not (tmp_path_of(repo) / "outside.py").exists()


def tmp_path_of(repo: Path) -> Path:
    return repo.parent


def test_reads_refuse_links_and_special_files(hostile: tuple[Path, Path]) -> None:
    repo, _ = hostile
    os.mkfifo(repo / "pkg" / "pipe.py")
    for rel, reason in (("pkg/linked.py", "symbolic link"), ("extpkg/mod.py", "symbolic link"),
                        ("pkg/pipe.py", "not a regular file")):
        with pytest.raises(UnsafePathError, match=reason):
            read_file(repo, rel)
    assert "pkg/pipe.py" not in Project.load(repo).files


def test_host_git_ignores_the_users_global_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A checkout naming a filter that the operator's ~/.gitconfig defines: plain git runs it on
    # checkout; diffusellm's git reads no global config, so it never runs.
    repo = make_repo(tmp_path / "repo", {**REPO, ".gitattributes": "*.py filter=evil\n"})
    home, ran = tmp_path / "home", tmp_path / "filter-ran"
    home.mkdir()
    (home / ".gitconfig").write_text(f'[filter "evil"]\n\tsmudge = "touch {ran}; cat"\n')
    monkeypatch.setenv("HOME", str(home))
    head = git_out(["rev-parse", "HEAD"], repo)
    wt = create_worktree(repo, head, tmp_path / "work", "wt")
    assert (wt.path / "pkg" / "app.py").read_text() == REPO["pkg/app.py"]
    assert not ran.exists()
    subprocess.run(["git", "worktree", "add", "-q", "--detach", str(tmp_path / "plain"), head], cwd=repo,
                   check=True, capture_output=True)
    assert ran.exists(), "the filter is real: plain git with the same HOME runs it"
