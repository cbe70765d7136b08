"""Digestion input: the repository's Python files with their git blob ids (the incremental key)."""

from __future__ import annotations

import hashlib
import os
import posixpath
from collections.abc import Iterable
from pathlib import Path

from diffusellm.errors import RepositoryError
from diffusellm.pipeline.paths import is_plain_file, read_file
from diffusellm.pipeline.project import SKIP_DIRS
from diffusellm.pipeline.workspace import run_git

_SKIPPED_MODES = ("120000", "160000")  # symlinks and submodules are not files of this repository


def blob_id(data: bytes) -> str:
    """Git's id of a blob: sha1 over `blob <length>\\0` and the bytes."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def wanted(path: str) -> bool:
    """A Python source file outside the folders nobody digests (venvs, caches, builds)."""
    if not path.endswith(".py"):
        return False
    return not SKIP_DIRS.intersection(path.split("/")[:-1])


def python_blobs(repo: Path) -> dict[str, str]:
    """Repository-relative POSIX path → blob id of every Python file to digest.

    In a git work tree: tracked files take the index's id unless modified in the work tree;
    modified and untracked (not ignored) files are hashed by one `git hash-object` call.
    Outside git, the ids are computed here, as git would.
    """
    if not repo.is_dir():
        raise RepositoryError(f"{repo} is not a directory", hint="pass the repository's root")
    if not _is_work_tree(repo):
        return _walk_and_hash(repo)
    staged, conflicted = _staged(repo)
    dirty = {p for p in _git_list(repo, "-m") if p in staged} | conflicted
    untracked = {p for p in _git_list(repo, "-o", "--exclude-standard") if p not in staged}
    blobs = {p: b for p, b in staged.items() if p not in dirty and is_plain_file(repo, p)}
    rehash = sorted(p for p in dirty | untracked if is_plain_file(repo, p))
    blobs.update(_hash_objects(repo, rehash))
    return dict(sorted(blobs.items()))


def module_names(repo: Path, paths: Iterable[str]) -> dict[str, str]:
    """`worker.ops.base.module_name_for` of many files, checking each folder for `__init__.py`
    once. A root-level `__init__.py` has no dotted name; it is called `__init__`."""
    is_package: dict[str, bool] = {}
    names: dict[str, str] = {}
    for path in paths:
        folder, name = posixpath.split(path)
        stem = name.removesuffix(".py")
        parts = [] if stem == "__init__" else [stem]
        while folder:
            if folder not in is_package:
                is_package[folder] = (repo / folder / "__init__.py").exists()
            if not is_package[folder]:
                break
            folder, package = posixpath.split(folder)
            parts.insert(0, package)
        names[path] = ".".join(parts) or "__init__"
    return names


def _git(repo: Path, *args: str, stdin: bytes | None = None) -> bytes:
    done = run_git(list(args), repo, stdin=stdin, check=False)
    if done.returncode != 0:
        raise RepositoryError(
            f"git {args[0]} failed in {repo}: {done.stderr.decode('utf-8', 'replace').strip()}",
            hint="check the repository is readable and not corrupted (`git status` there)",
        )
    return done.stdout


def _is_work_tree(repo: Path) -> bool:
    try:
        done = run_git(["rev-parse", "--is-inside-work-tree"], repo, check=False)
    except RepositoryError:
        return False
    return done.returncode == 0 and done.stdout.strip() == b"true"


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _staged(repo: Path) -> tuple[dict[str, str], set[str]]:
    """Index entries: path → blob id, and the paths with merge conflicts."""
    staged: dict[str, str] = {}
    conflicted: set[str] = set()
    for entry in _git(repo, "ls-files", "-s", "-z", "--", "*.py").split(b"\0"):
        if not entry:
            continue
        meta, _, raw_path = entry.partition(b"\t")
        mode, blob, stage = _decode(meta).split(" ")
        path = _decode(raw_path)
        if mode in _SKIPPED_MODES or not wanted(path):
            continue
        if stage != "0":
            conflicted.add(path)
        staged[path] = blob
    return staged, conflicted


def _git_list(repo: Path, *flags: str) -> list[str]:
    out = _git(repo, "ls-files", "-z", *flags, "--", "*.py")
    return [p for p in (_decode(raw) for raw in out.split(b"\0")) if p and wanted(p)]


def _hash_objects(repo: Path, paths: list[str]) -> dict[str, str]:
    """Blob ids of work-tree files in one `git hash-object --stdin-paths` call.

    A path with a newline cannot travel on that protocol; those are hashed here.
    """
    plain = [p for p in paths if "\n" not in p]
    ids: dict[str, str] = {}
    if plain:
        stdin = "\n".join(plain).encode("utf-8", "surrogateescape") + b"\n"
        out = _decode(_git(repo, "hash-object", "--stdin-paths", stdin=stdin)).split()
        ids.update(zip(plain, out, strict=True))
    for path in paths:
        if "\n" in path:
            ids[path] = blob_id(read_file(repo, path))
    return ids


def _walk_and_hash(repo: Path) -> dict[str, str]:
    """Outside git: every `.py` file under `repo`, skipping tool folders, hashed here."""
    blobs: dict[str, str] = {}
    for folder, dirs, files in os.walk(repo):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        rel_folder = Path(folder).relative_to(repo).as_posix()
        for name in files:
            full = Path(folder) / name
            if name.endswith(".py") and full.is_file() and not full.is_symlink():
                rel = name if rel_folder == "." else f"{rel_folder}/{name}"
                blobs[rel] = blob_id(full.read_bytes())
    return dict(sorted(blobs.items()))
