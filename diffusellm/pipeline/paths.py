"""Shared ground: the one guard for host-side reads and writes of work-copy files (no links, no .git/)."""

from __future__ import annotations

import codecs
import errno
import io
import os
import stat
import tokenize
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from diffusellm.errors import OperationError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO planted where a file was expected must not wait for a writer.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_HINT = "nothing is read or written through links, in .git/ or outside the work copy; nothing was changed"


class UnsafePathError(OperationError):
    """A repository path that leaves the work copy, passes through a link, or enters `.git/`."""


def split_path(rel: str) -> tuple[str, ...]:
    """The parts of a repository-relative path; refuse absolute paths, `..`, and `.git/`."""
    pure = PurePosixPath(rel.replace("\\", "/"))
    parts = tuple(p for p in pure.parts if p != ".")
    if not rel or pure.is_absolute() or not parts or ".." in parts:
        raise UnsafePathError(f"path {rel!r} is not inside the repository", hint=_HINT)
    if any(p.lower() == ".git" for p in parts):
        raise UnsafePathError(f"path {rel!r} is inside .git/", hint=_HINT)
    return parts


def _refusal(root_fd: int, parts: tuple[str, ...], depth: int, rel: str) -> UnsafePathError:
    """The error for a component that could not be opened as a plain folder or file."""
    link = "/".join(parts[: depth + 1])
    try:
        mode = os.lstat(link, dir_fd=root_fd).st_mode
    except OSError:
        mode = 0
    if stat.S_ISLNK(mode):
        return UnsafePathError(f"{link} is a symbolic link; refusing to follow it for {rel}", hint=_HINT)
    return UnsafePathError(f"{link} is not a regular file or folder (needed for {rel})", hint=_HINT)


@contextmanager
def _parent_fd(root: Path, rel: str, *, create: bool = False) -> Generator[tuple[int, int, str]]:
    """An open descriptor of the folder holding `rel`, reached one part at a time without links."""
    parts = split_path(rel)
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    fd = os.dup(root_fd)
    try:
        for depth, part in enumerate(parts[:-1]):
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(part, 0o777, dir_fd=fd)
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise _refusal(root_fd, parts, depth, rel) from None
                raise
            os.close(fd)
            fd = child
        yield root_fd, fd, parts[-1]
    finally:
        os.close(fd)
        os.close(root_fd)


def _open_leaf(fd: int, name: str, flags: int, rel: str, parts: tuple[str, ...], root_fd: int) -> int:
    try:
        leaf = os.open(name, flags, 0o666, dir_fd=fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR):
            raise _refusal(root_fd, parts, len(parts) - 1, rel) from None
        raise
    if not stat.S_ISREG(os.fstat(leaf).st_mode):
        os.close(leaf)
        raise _refusal(root_fd, parts, len(parts) - 1, rel)
    return leaf


def read_file(root: Path, rel: str, *, limit: int | None = None) -> bytes:
    """The bytes of the regular file `root/rel`; refuse links, special files and files over `limit`."""
    parts = split_path(rel)
    with _parent_fd(root, rel) as (root_fd, fd, name):
        leaf = _open_leaf(fd, name, _READ_FLAGS, rel, parts, root_fd)
    with os.fdopen(leaf, "rb") as handle:
        if limit is None:
            return handle.read()
        data = handle.read(limit + 1) if os.fstat(handle.fileno()).st_size <= limit else b""
        size = max(os.fstat(handle.fileno()).st_size, len(data))
    if size > limit:  # checked before reading, and again in case the file grew meanwhile
        raise UnsafePathError(f"{rel} is {size} bytes, over the {limit}-byte limit", hint=_HINT)
    return data


def write_file(root: Path, rel: str, data: bytes) -> None:
    """Create or replace the regular file `root/rel` (folders made as needed), never through a link."""
    parts = split_path(rel)
    with _parent_fd(root, rel, create=True) as (root_fd, fd, name):
        leaf = _open_leaf(fd, name, _WRITE_FLAGS, rel, parts, root_fd)
    with os.fdopen(leaf, "wb") as handle:
        os.ftruncate(handle.fileno(), 0)
        handle.write(data)


def remove_file(root: Path, rel: str) -> None:
    """Delete the regular file `root/rel` if it exists; refuse to delete a link or a folder."""
    parts = split_path(rel)
    try:
        with _parent_fd(root, rel) as (root_fd, fd, name):
            if not stat.S_ISREG(os.lstat(name, dir_fd=fd).st_mode):
                raise _refusal(root_fd, parts, len(parts) - 1, rel)
            os.unlink(name, dir_fd=fd)
    except FileNotFoundError:
        return


def is_plain_file(root: Path, rel: str) -> bool:
    """Whether `root/rel` is a regular file reached without links and outside `.git/`."""
    try:
        with _parent_fd(root, rel) as (_, fd, name):
            return stat.S_ISREG(os.lstat(name, dir_fd=fd).st_mode)
    except (OSError, UnsafePathError):
        return False


def link_in_path(root: Path, rel: str) -> str | None:
    """The first part of `rel` (as a relative path) that is a symbolic link, or None."""
    parts = split_path(rel)
    for depth in range(len(parts)):
        prefix = "/".join(parts[: depth + 1])
        try:
            if (root / prefix).is_symlink():
                return prefix
        except OSError:
            return None
    return None



def source_encoding(data: bytes) -> str:
    """The encoding a Python file declares (PEP 263 cookie or BOM); UTF-8 when it declares none.

    A UTF-8 BOM is kept in the text (decoded as plain UTF-8), so writing the text back keeps it.
    """
    try:
        declared, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        reason = str(exc)
        if reason.startswith("invalid or missing"):
            reason = "it is not valid UTF-8 and declares no other encoding (PEP 263)"
        raise UnicodeError(reason.replace("unknown encoding", "it declares an unknown encoding")) from None
    return "utf-8" if declared in ("utf-8", "utf-8-sig") else declared


def decode_source(data: bytes) -> str:
    """Text of a Python file in its declared encoding; `UnicodeError` names the reason otherwise."""
    encoding = source_encoding(data)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise UnicodeError(f"it is not valid {encoding} ({exc.reason} at byte {exc.start})") from None


def encode_source(rel: str, text: str) -> bytes:
    """Bytes of new text for `rel` in the encoding its own first two lines declare (else UTF-8)."""
    try:
        encoding = source_encoding(text.encode("utf-8", "surrogateescape"))
    except UnicodeError:
        encoding = "utf-8"
    try:
        codecs.lookup(encoding)
        return text.encode(encoding)
    except (LookupError, UnicodeEncodeError) as exc:
        raise OperationError(
            f"cannot write {rel} in the encoding it declares ({encoding}): {exc}",
            hint="convert the file to UTF-8 first; nothing was changed",
        ) from None


def check_path(root: Path, rel: str) -> None:
    """Refuse `rel` when it leaves the work copy, enters .git/, or is or passes through a link."""
    link = link_in_path(root, rel)
    if link is not None:
        raise UnsafePathError(
            f"{link} is a symbolic link ({rel} would be reached through it)",
            hint="links are left alone; make it a regular file or folder first; nothing was changed",
        )
