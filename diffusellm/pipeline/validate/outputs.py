"""Phase 6: read a file a sandboxed check wrote without trusting it (a regular file, capped, no links, no waiting)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from diffusellm.pipeline.paths import UnsafePathError, read_file

MAX_OUTPUT_FILE_BYTES = 64 * 1024 * 1024
"""The largest report a check may leave (a junit file of tens of thousands of tests is a few MB)."""


class OutputRefusedError(Exception):
    """A file the sandbox left that the host will not read: missing, special, linked or too big."""

    def __init__(self, rel: str, reason: str) -> None:
        super().__init__(f"{rel}: {reason}")
        self.rel = rel
        self.reason = reason


def read_output(root: Path, rel: str, *, limit: int = MAX_OUTPUT_FILE_BYTES) -> bytes:
    """The bytes of `root/rel`, a file written inside the sandbox; `OutputRefusedError` says why not.

    Tests run there can replace a report with a FIFO (opening it would block the host forever),
    a link to a host file, or something huge: `lstat` must show a regular file under `limit`
    first, and the open neither follows a link (in any part of the path) nor blocks.
    """
    try:
        info = os.lstat(root / rel)
    except FileNotFoundError:
        raise OutputRefusedError(rel, "not written") from None
    except OSError as exc:
        raise OutputRefusedError(rel, f"cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a regular file"
        raise OutputRefusedError(rel, f"is {kind}; not read")
    if info.st_size > limit:
        raise OutputRefusedError(rel, f"is {info.st_size} bytes, over the {limit}-byte cap; not read")
    try:
        return read_file(root, rel, limit=limit)
    except UnsafePathError as exc:
        raise OutputRefusedError(rel, exc.message) from None
    except OSError as exc:
        raise OutputRefusedError(rel, f"cannot be read ({exc.strerror})") from None
