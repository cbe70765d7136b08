"""Tests for the phase 7 workspace: the user's checkout is never touched; work lands on a branch."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from pathlib import Path

import pytest

from diffusellm.errors import RepositoryError
from diffusellm.pipeline.workspace import (
    RepoInfo,
    Worktree,
    branch_name,
    changed_files,
    commit_and_branch,
    create_worktree,
    export_checkout,
    open_repository,
    remove_worktree,
    resolve_base,
    slugify,
)

IDENTITY = ["-c", "user.name=Test User", "-c", "user.email=test@example.com"]


def git(repo: Path, *args: str, check: bool = True) -> str:
    """Run git in a test repository as the test's user (not through the code under test)."""
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0",
           "GIT_OPTIONAL_LOCKS": "0"}
    env = {k: v for k, v in env.items() if k not in ("GIT_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE")}
    proc = subprocess.run(["git", *IDENTITY, *args], cwd=repo, env=env, capture_output=True,
                          text=True, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {args} failed: {proc.stderr}")
    return proc.stdout.strip()


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def make_repo(root: Path) -> Path:
    """A repo: two commits on main, a tag, a staged change, a modified file, an untracked one."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    write(root / "pkg/__init__.py", "")
    write(root / "pkg/core.py", "def greet(name):\n    return 'hi ' + name\n")
    write(root / "README.md", "# demo\n")
    write(root / ".gitignore", "*.log\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "Initial commit")
    git(root, "tag", "v1")
    write(root / "pkg/util.py", "X = 1\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "Add util")
    write(root / "pkg/util.py", "X = 2  # staged\n")
    git(root, "add", "pkg/util.py")
    write(root / "README.md", "# demo\n\nuncommitted edit\n")
    write(root / "notes.txt", "untracked\n")
    return root


def install_failing_hooks(repo: Path, marker: Path) -> None:
    hooks = ("pre-commit", "commit-msg", "post-checkout", "post-commit", "reference-transaction")
    for hook in hooks:
        path = repo / ".git" / "hooks" / hook
        path.write_text(f"#!/bin/sh\necho {hook} >> '{marker}'\nexit 1\n")
        path.chmod(path.stat().st_mode | stat.S_IEXEC)


def snapshot(repo: Path) -> dict[str, str]:
    """Hashes of every file of the checkout and of .git's HEAD, index, config and local refs."""
    state: dict[str, str] = {}
    for path in sorted(repo.rglob("*")):
        rel = path.relative_to(repo).as_posix()
        if path.is_file() and not rel.startswith(".git/"):
            state[rel] = hashlib.sha256(path.read_bytes()).hexdigest() + oct(path.stat().st_mode)
    for name in ("HEAD", "index", "config"):
        state[f".git/{name}"] = hashlib.sha256((repo / ".git" / name).read_bytes()).hexdigest()
    state["refs"] = git(repo, "for-each-ref", "--format=%(refname) %(objectname)",
                        "refs/heads/main", "refs/tags")
    state["status"] = git(repo, "status", "--porcelain")
    return state


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "user-repo")


def test_full_flow_leaves_user_checkout_byte_identical(repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "hooks-ran.txt"
    install_failing_hooks(repo, marker)
    clean_file = repo / "pkg" / "__init__.py"  # same content, new mtime: a status would re-index it
    os.utime(clean_file, (clean_file.stat().st_atime, clean_file.stat().st_mtime + 100))
    before = snapshot(repo)
    info = open_repository(repo)
    wt = create_worktree(info.root, info.head_commit, tmp_path / "state" / "worktrees", "job-1")
    write(wt.path / "pkg/core.py", "def greet(name):\n    return 'hello ' + name\n")
    write(wt.path / "pkg/new.py", "Y = 3\n")
    (wt.path / "pkg/util.py").unlink()
    write(wt.path / "pkg/__pycache__/core.cpython-311.pyc", "cache")  # left by validation
    write(wt.path / ".pytest_cache/v/cache/lastfailed", "{}")
    assert changed_files(wt) == ["pkg/core.py", "pkg/new.py", "pkg/util.py"]
    sha = commit_and_branch(wt, branch="diffusellm/greet", message="Change greeting\n\nbody",
                            author_name="Bot", author_email="bot@example.com")
    remove_worktree(wt)

    assert snapshot(repo) == before
    assert not marker.exists(), "a repository hook was run"
    assert not wt.path.exists()
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert git(repo, "rev-parse", "diffusellm/greet") == sha
    assert git(repo, "rev-parse", "diffusellm/greet^") == info.head_commit
    assert git(repo, "diff", "--name-status", info.head_commit, sha).splitlines() == [
        "M\tpkg/core.py", "A\tpkg/new.py", "D\tpkg/util.py"]
    assert git(repo, "show", f"{sha}:pkg/core.py") == "def greet(name):\n    return 'hello ' + name"
    assert git(repo, "log", "-1", "--format=%an <%ae>|%cn <%ce>|%B", sha) == (
        "Bot <bot@example.com>|Bot <bot@example.com>|Change greeting\n\nbody")


def test_open_repository_describes_checkout(repo: Path) -> None:
    info = open_repository(repo / "pkg")
    assert info == RepoInfo(root=repo.resolve(), head_commit=git(repo, "rev-parse", "HEAD"),
                            current_branch="main", dirty=True, default_branch="main")


def test_open_repository_clean_and_detached(repo: Path) -> None:
    git(repo, "stash", "-u", "-q")
    git(repo, "checkout", "-q", "--detach", "v1")
    info = open_repository(repo)
    assert (info.dirty, info.current_branch) == (False, None)
    assert info.head_commit == git(repo, "rev-parse", "v1^{commit}")


def test_open_repository_prefers_origin_head(repo: Path, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    git(clone, "checkout", "-q", "-b", "feature")
    assert open_repository(clone).default_branch == "main"
    assert open_repository(clone).current_branch == "feature"


@pytest.mark.parametrize(
    ("setup", "message", "hint"),
    [
        ("missing", "does not exist", "--repo"),
        ("plain", "not a git repository", "git init"),
        ("empty", "no commits yet", "commit"),
        ("bare", "bare repository", "clone"),
    ],
)
def test_open_repository_refuses_unusable_paths(
    tmp_path: Path, setup: str, message: str, hint: str
) -> None:
    path = tmp_path / "target"
    if setup != "missing":
        path.mkdir()
    if setup == "empty":
        git(path, "init", "-q")
    if setup == "bare":
        git(path, "init", "-q", "--bare")
    with pytest.raises(RepositoryError) as err:
        open_repository(path)
    assert message in err.value.message
    assert hint in err.value.hint


def _conflicting_branch(repo: Path) -> None:
    git(repo, "stash", "-u", "-q")
    git(repo, "checkout", "-q", "-b", "other", "v1")
    write(repo / "README.md", "# other\n")
    git(repo, "commit", "-q", "-am", "other readme")
    git(repo, "checkout", "-q", "main")
    write(repo / "README.md", "# main\n")
    git(repo, "commit", "-q", "-am", "main readme")


@pytest.mark.parametrize(("command", "what"), [("merge", "a merge"), ("rebase", "a rebase")])
def test_open_repository_refuses_merge_or_rebase_in_progress(
    repo: Path, command: str, what: str
) -> None:
    _conflicting_branch(repo)
    git(repo, command, "other", check=False)
    with pytest.raises(RepositoryError) as err:
        open_repository(repo)
    assert what in err.value.message
    assert "--abort" in err.value.hint


def test_resolve_base(repo: Path) -> None:
    info = open_repository(repo)
    assert resolve_base(info, None) == info.head_commit
    assert resolve_base(info, "main") == info.head_commit
    assert resolve_base(info, "v1") == git(repo, "rev-parse", "v1^{commit}")
    assert resolve_base(info, info.head_commit[:8]) == info.head_commit
    assert resolve_base(info, "main~1") == git(repo, "rev-parse", "v1^{commit}")
    for bad in ("nope", "--all", ""):
        with pytest.raises(RepositoryError) as err:
            resolve_base(info, bad)
        assert err.value.hint


def test_create_worktree_is_detached_at_base_and_replaces_stale(repo: Path, tmp_path: Path) -> None:
    info = open_repository(repo)
    base = resolve_base(info, "v1")
    parent = tmp_path / "state"
    first = create_worktree(repo, base, parent, "job")
    write(first.path / "leftover.txt", "from a crashed run\n")
    second = create_worktree(repo, base, parent, "job")  # registered stale worktree
    assert not (second.path / "leftover.txt").exists()
    assert git(second.path, "rev-parse", "HEAD") == base
    assert git(second.path, "symbolic-ref", "-q", "HEAD", check=False) == ""
    assert not (second.path / "pkg/util.py").exists()  # a file added after v1
    remove_worktree(second)
    write(parent / "job" / "junk.txt", "unregistered folder\n")  # folder git no longer knows
    third = create_worktree(repo, base, parent, "job")
    names = sorted(p.name for p in third.path.iterdir())
    assert names == [".git", ".gitignore", "README.md", "pkg"]
    remove_worktree(third)
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1


def test_create_worktree_refuses_to_delete_the_repository(repo: Path) -> None:
    with pytest.raises(RepositoryError):
        create_worktree(repo, git(repo, "rev-parse", "HEAD"), repo.parent, repo.name)
    assert (repo / "README.md").exists()


def test_changed_files_ignores_gitignored_and_untouched(repo: Path, tmp_path: Path) -> None:
    wt = create_worktree(repo, git(repo, "rev-parse", "HEAD"), tmp_path / "s", "w")
    write(wt.path / "debug.log", "ignored\n")
    (wt.path / "README.md").touch()  # same content, newer mtime
    assert changed_files(wt) == []
    write(wt.path / "sub dir/ünï.py", "Z = 1\n")
    assert changed_files(wt) == ["sub dir/ünï.py"]
    remove_worktree(wt)


def test_slugify() -> None:
    slug = slugify("Rename `greet` → Welcome: Ünïcode & more!")
    assert slug == "rename-greet-welcome-unicode-more"
    long = slugify("word " * 30)
    assert len(long) <= 50 and not long.endswith("-") and long.startswith("word-word")
    assert slugify("!!!") == "change"


def test_branch_name_collisions(repo: Path) -> None:
    assert branch_name("diffusellm/", "Rename greet", repo) == "diffusellm/rename-greet"
    git(repo, "branch", "diffusellm/rename-greet")
    assert branch_name("diffusellm/", "Rename greet", repo) == "diffusellm/rename-greet-2"
    git(repo, "branch", "diffusellm/rename-greet-2")
    assert branch_name("diffusellm/", "Rename greet", repo) == "diffusellm/rename-greet-3"
    with pytest.raises(RepositoryError):
        branch_name("bad..prefix/", "x", repo)


def _edited_worktree(repo: Path, tmp_path: Path) -> Worktree:
    wt = create_worktree(repo, git(repo, "rev-parse", "HEAD"), tmp_path / "s", "w")
    write(wt.path / "pkg/core.py", "changed = True\n")
    return wt


def test_commit_and_branch_refuses_existing_branch(repo: Path, tmp_path: Path) -> None:
    git(repo, "branch", "taken", "v1")
    before = git(repo, "rev-parse", "taken")
    wt = _edited_worktree(repo, tmp_path)
    with pytest.raises(RepositoryError) as err:
        commit_and_branch(wt, branch="taken", message="m", author_name="B", author_email="b@x")
    assert "already exists" in err.value.message
    assert git(repo, "rev-parse", "taken") == before
    remove_worktree(wt)


def test_commit_and_branch_refuses_empty_change(repo: Path, tmp_path: Path) -> None:
    wt = create_worktree(repo, git(repo, "rev-parse", "HEAD"), tmp_path / "s", "w")
    with pytest.raises(RepositoryError) as err:
        commit_and_branch(wt, branch="empty", message="m", author_name="B", author_email="b@x")
    assert "empty" in err.value.message
    assert git(repo, "branch", "--list", "empty") == ""
    remove_worktree(wt)


def test_commit_message_kept_verbatim(repo: Path, tmp_path: Path) -> None:
    wt = _edited_worktree(repo, tmp_path)
    message = "Fix #12 issue\n\n# not a comment\n- bullet\n\nGenerated-by: diffusellm\n"
    sha = commit_and_branch(wt, branch="verbatim", message=message, author_name="B",
                            author_email="b@x")
    assert git(repo, "log", "-1", "--format=%B", sha) == message.strip()
    remove_worktree(wt)


def test_export_checkout_copies_committed_tree_only(repo: Path, tmp_path: Path) -> None:
    write(repo / ".gitattributes", "pkg/util.py export-ignore\n")
    git(repo, "add", ".gitattributes")
    git(repo, "commit", "-q", "-m", "attrs", "--", ".gitattributes")
    before = snapshot(repo)
    dest = export_checkout(repo, git(repo, "rev-parse", "HEAD"), tmp_path / "base")
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert files == [".gitattributes", ".gitignore", "README.md", "pkg/__init__.py", "pkg/core.py",
                     "pkg/util.py"]
    assert (dest / "README.md").read_text() == "# demo\n"  # committed, not the dirty edit
    assert (dest / "pkg/util.py").read_text() == "X = 1\n"  # committed, not the staged one
    assert snapshot(repo) == before
    with pytest.raises(RepositoryError):
        export_checkout(repo, "HEAD", dest)
