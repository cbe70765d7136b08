"""Phase 7 workspace: open the user's repo, work in a detached worktree, leave a new branch."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from diffusellm.errors import RepositoryError

# Options on every git call: no hooks (a repository's hooks are code we must not run), no fsmonitor
# daemon (also configurable code), no signing prompts, no background gc in the user's object store.
_GIT_OPTS = (
    "-c", "core.hooksPath=/dev/null",
    "-c", "core.fsmonitor=false",
    "-c", "core.quotePath=false",
    "-c", "commit.gpgSign=false",
    "-c", "tag.gpgSign=false",
    "-c", "gc.auto=0",
    "-c", "maintenance.auto=false",
    "-c", "advice.detachedHead=false",
)
_ZERO_OID = "0" * 40
_IN_PROGRESS = {
    "MERGE_HEAD": "a merge",
    "rebase-merge": "a rebase",
    "rebase-apply": "a rebase or `git am`",
    "CHERRY_PICK_HEAD": "a cherry-pick",
    "REVERT_HEAD": "a revert",
}
_SLUG_MAX = 50
# Tool caches that validation may leave in the worktree; never part of the change even when the
# repository does not ignore them.
_JUNK_DIRS = ("__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache")
_JUNK_IGNORE = [f"--exclude={d}/" for d in _JUNK_DIRS] + ["--exclude=*.py[co]"]
_JUNK_PATHSPECS = [f":(exclude,glob)**/{d}/**" for d in _JUNK_DIRS] + [":(exclude,glob)**/*.py[co]"]


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for git: no inherited GIT_* redirection, no global or system config, no prompts.

    Checkouts may be hostile: filters, fsmonitor or aliases in the user's own git config must not
    run on them, so only the repository's config and our `-c` options count. The commit identity
    comes from settings (`commit.author_*`), never from the user's git config.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_TERMINAL_PROMPT="0",
        GIT_ASKPASS="",
        SSH_ASKPASS="",
        GIT_EDITOR="true",
        GIT_PAGER="cat",
        # else `git status` may rewrite (refresh) the user's index; git(1) GIT_OPTIONAL_LOCKS
        GIT_OPTIONAL_LOCKS="0",
        LC_ALL="C",
    )
    env.update(extra or {})
    return env


def run_git(
    args: Sequence[str],
    cwd: Path,
    *,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run one hardened git command; raise `RepositoryError` on failure when `check`."""
    cmd = ["git", *_GIT_OPTS, *args]
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, env=git_env(env), input=stdin, capture_output=True, timeout=300,
            check=False,
        )
    except FileNotFoundError:
        raise RepositoryError("git is not installed", hint="install git (2.25 or newer)") from None
    except subprocess.TimeoutExpired:
        raise RepositoryError(f"git {args[0]} took over 5 minutes in {cwd}") from None
    if check and proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()
        raise RepositoryError(f"git {' '.join(args[:2])} failed in {cwd}: {err}")
    return proc


def git_out(args: Sequence[str], cwd: Path) -> str:
    """Stdout of a checked git command, decoded and stripped of the final newline."""
    return run_git(args, cwd).stdout.decode("utf-8", "surrogateescape").rstrip("\n")


@dataclass(frozen=True)
class RepoInfo:
    """What the pipeline needs to know about the user's repository before working from it."""

    root: Path
    head_commit: str
    current_branch: str | None
    dirty: bool
    default_branch: str | None


def _git_dir_check(path: Path) -> None:
    """Refuse a path that is not inside a git work tree, or that is a bare repository."""
    args = ["rev-parse", "--is-bare-repository", "--is-inside-work-tree"]
    probe = run_git(args, path, check=False)
    if b"dubious ownership" in probe.stderr:
        raise RepositoryError(
            f"git refuses {path}: it belongs to another user",
            hint="run diffusellm as the user who owns the checkout, or clone it and pass the clone "
            "(the user's git config, safe.directory included, is not read)",
        )
    if probe.returncode != 0:
        raise RepositoryError(
            f"{path} is not a git repository",
            hint="run `git init` there and commit your code, or pass --repo with a git checkout",
        )
    bare, inside = probe.stdout.decode().split()
    if bare == "true":
        raise RepositoryError(
            f"{path} is a bare repository; it has no checkout to work from",
            hint="clone it (`git clone PATH checkout`) and pass the clone",
        )
    if inside != "true":
        raise RepositoryError(f"{path} is inside a .git directory", hint="pass the checkout's root")


def _operation_in_progress(root: Path) -> str | None:
    """The name of an unfinished merge/rebase/cherry-pick in the checkout, if any."""
    args = ["rev-parse"]
    for marker in _IN_PROGRESS:
        args += ["--git-path", marker]
    paths = git_out(args, root).splitlines()
    for rel, what in zip(paths, _IN_PROGRESS.values(), strict=True):
        if (root / rel).exists():
            return what
    return None


def _default_branch(root: Path) -> str | None:
    """origin's HEAD branch, else a local main/master, else None."""
    remote_head = run_git(["symbolic-ref", "-q", "refs/remotes/origin/HEAD"], root, check=False)
    if remote_head.returncode == 0:
        return remote_head.stdout.decode().strip().removeprefix("refs/remotes/origin/")
    for name in ("main", "master"):
        if ref_exists(root, f"refs/heads/{name}"):
            return name
    return None


def repository_root(path: Path) -> Path:
    """The top folder of the git checkout containing `path`, resolved (how runs record it)."""
    return Path(git_out(["rev-parse", "--show-toplevel"], path)).resolve()


def open_repository(path: Path) -> RepoInfo:
    """Check that `path` is a usable git checkout and describe it; never changes anything there."""
    if not path.exists():
        raise RepositoryError(f"repository path does not exist: {path}", hint="check --repo")
    if not path.is_dir():
        raise RepositoryError(f"repository path is not a directory: {path}", hint="pass a folder")
    _git_dir_check(path)
    root = repository_root(path)
    head = run_git(["rev-parse", "--verify", "-q", "HEAD^{commit}"], root, check=False)
    if head.returncode != 0:
        raise RepositoryError(
            f"{root} has no commits yet; the change is built from a commit",
            hint="commit your code first (`git add -A && git commit -m 'Initial commit'`)",
        )
    in_progress = _operation_in_progress(root)
    if in_progress:
        raise RepositoryError(
            f"{root} is in the middle of {in_progress}",
            hint="finish it or abort it (e.g. `git merge --abort`, `git rebase --abort`) first",
        )
    branch = run_git(["symbolic-ref", "-q", "--short", "HEAD"], root, check=False)
    status = git_out(["status", "--porcelain", "-z", "--untracked-files=normal"], root)
    return RepoInfo(
        root=root,
        head_commit=head.stdout.decode().strip(),
        current_branch=branch.stdout.decode().strip() or None,
        dirty=bool(status),
        default_branch=_default_branch(root),
    )


def resolve_base(info: RepoInfo, base: str | None) -> str:
    """The commit sha of `base` (branch, tag or sha), or of HEAD when `base` is None."""
    if base is None:
        return info.head_commit
    if not base or base.startswith("-") or any(c.isspace() for c in base):
        raise RepositoryError(f"invalid base revision: {base!r}", hint="pass a branch, tag or sha")
    proc = run_git(["rev-parse", "--verify", "-q", f"{base}^{{commit}}"], info.root, check=False)
    if proc.returncode != 0:
        raise RepositoryError(
            f"unknown base revision {base!r} in {info.root}",
            hint="pass an existing branch, tag or commit (see `git branch -a`, `git tag`)",
        )
    return proc.stdout.decode().strip()


def ref_exists(repo: Path, ref: str) -> bool:
    """Whether the full ref name (e.g. `refs/heads/x`) exists."""
    return run_git(["show-ref", "--verify", "-q", ref], repo, check=False).returncode == 0


@dataclass
class Worktree:
    """A detached worktree of `repo` at `path`, created from `base_commit`."""

    repo: Path
    path: Path
    base_commit: str


def _registered_worktrees(repo: Path) -> list[Path]:
    out = git_out(["worktree", "list", "--porcelain"], repo)
    return [Path(line[9:]).resolve() for line in out.splitlines() if line.startswith("worktree ")]


def _discard_path(repo: Path, path: Path) -> None:
    """Remove a worktree folder we made earlier, registered or not, and prune git's record of it."""
    resolved = path.resolve()
    if resolved == repo.resolve() or resolved in repo.resolve().parents:
        raise RepositoryError(
            f"refusing to remove {path}: it is or contains the repository",
            hint="configure a state directory outside the repository",
        )
    if resolved in _registered_worktrees(repo):
        run_git(["worktree", "remove", "--force", "--force", str(resolved)], repo, check=False)
    if path.exists() or path.is_symlink():
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    run_git(["worktree", "prune"], repo)


def create_worktree(repo: Path, base_commit: str, parent_dir: Path, name: str) -> Worktree:
    """`git worktree add --detach` at `parent_dir/name`, replacing a stale one of the same name."""
    if not name or "/" in name or name in (".", ".."):
        raise RepositoryError(f"invalid worktree name {name!r}", hint="use a plain folder name")
    parent_dir.mkdir(parents=True, exist_ok=True)
    path = parent_dir.resolve() / name
    _discard_path(repo, path)
    run_git(["worktree", "add", "--detach", str(path), base_commit], repo)
    return Worktree(repo=repo, path=path, base_commit=base_commit)


def remove_worktree(wt: Worktree) -> None:
    """Delete the worktree folder and git's record of it; commits and branches made from it stay."""
    _discard_path(wt.repo, wt.path)


def _split_z(out: bytes) -> list[str]:
    return [p for p in out.decode("utf-8", "surrogateescape").split("\0") if p]


def untracked_files(path: Path) -> list[str]:
    """New files in a worktree that are neither ignored by the repository nor tool caches."""
    proc = run_git(["ls-files", "--others", "--exclude-standard", *_JUNK_IGNORE, "-z"], path)
    return _split_z(proc.stdout)


def changed_files(wt: Worktree) -> list[str]:
    """Paths (relative to the worktree) that differ from the base: modified, new or deleted."""
    run_git(["update-index", "-q", "--refresh"], wt.path, check=False)
    diff = run_git(
        ["diff", "--name-only", "-z", "--no-renames", "--no-ext-diff", wt.base_commit, "--"],
        wt.path,
    )
    return sorted(set(_split_z(diff.stdout)) | set(untracked_files(wt.path)))


def slugify(title: str, max_len: int = _SLUG_MAX) -> str:
    """Lowercase ascii words joined by dashes, cut at a word boundary to at most `max_len`."""
    ascii_text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if len(slug) > max_len:
        cut = slug[: max_len + 1]
        slug = cut.rsplit("-", 1)[0] if "-" in cut else slug[:max_len]
    return slug.strip("-") or "change"


def _valid_branch(repo: Path, branch: str) -> bool:
    proc = run_git(["check-ref-format", "--branch", branch], repo, check=False)
    return proc.returncode == 0 and not branch.startswith("-")


def branch_name(prefix: str, title: str, repo: Path) -> str:
    """`prefix` + slug of `title`; `-2`, `-3`... appended while a branch of that name exists."""
    base = f"{prefix}{slugify(title)}"
    if not _valid_branch(repo, base):
        raise RepositoryError(
            f"{base!r} is not a valid branch name", hint="change the branch prefix in the config"
        )
    candidate, n = base, 1
    while ref_exists(repo, f"refs/heads/{candidate}"):
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def commit_and_branch(
    wt: Worktree, *, branch: str, message: str, author_name: str, author_email: str
) -> str:
    """Commit everything changed in the worktree and point a new `branch` of the repo at it."""
    if not _valid_branch(wt.repo, branch):
        raise RepositoryError(f"{branch!r} is not a valid branch name", hint="pick another name")
    if ref_exists(wt.repo, f"refs/heads/{branch}"):
        raise RepositoryError(
            f"branch {branch!r} already exists in {wt.repo}",
            hint="delete it or let the tool pick a free name (branch_name)",
        )
    run_git(["add", "-A", "--", ".", *_JUNK_PATHSPECS], wt.path)
    same = run_git(["diff", "--cached", "--quiet", wt.base_commit], wt.path, check=False)
    if same.returncode == 0:
        raise RepositoryError(
            "the change is empty: nothing differs from the base commit",
            hint="check that the operations found their targets",
        )
    identity = {
        "GIT_AUTHOR_NAME": author_name, "GIT_AUTHOR_EMAIL": author_email,
        "GIT_COMMITTER_NAME": author_name, "GIT_COMMITTER_EMAIL": author_email,
    }
    run_git(
        ["-c", f"user.name={author_name}", "-c", f"user.email={author_email}", "commit",
         "--no-verify", "--no-gpg-sign", "--cleanup=whitespace", "-q", "-F", "-"],
        wt.path, env=identity, stdin=message.encode("utf-8"),
    )
    sha = git_out(["rev-parse", "HEAD"], wt.path)
    # An all-zero old value makes update-ref fail if the branch appeared meanwhile (no overwrite).
    run_git(["update-ref", "-m", "diffusellm: create branch", f"refs/heads/{branch}", sha,
             _ZERO_OID], wt.repo)
    return sha


def export_checkout(repo: Path, commit: str, dest: Path) -> Path:
    """A plain copy (no .git) of the tree at `commit` in `dest`, for the base side of validation.

    A throwaway index instead of `git archive`, so `export-ignore` files (often tests) are kept.
    """
    if dest.exists() and any(dest.iterdir()):
        raise RepositoryError(f"export folder {dest} is not empty", hint="remove it first")
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="diffusellm-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        run_git(["read-tree", f"{commit}^{{tree}}"], repo, env=env)
        prefix = str(dest.resolve()) + os.sep
        run_git(["checkout-index", "-a", "-f", f"--prefix={prefix}"], repo, env=env)
    return dest
