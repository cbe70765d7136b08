"""Phase 7 commit builder: changed line ranges, format only what changed, and the commit's texts."""

from __future__ import annotations

import re
import subprocess
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from diffusellm.errors import DiffuseLLMError
from diffusellm.pipeline.deliver.changelog import changelog_entry
from diffusellm.pipeline.deliver.summary import spec_digest, summary_markdown
from diffusellm.pipeline.deliver.text import commit_message, describe_operation
from diffusellm.pipeline.paths import UnsafePathError, is_plain_file, read_file
from diffusellm.pipeline.workspace import Worktree, run_git, untracked_files

__all__ = [
    "changed_line_ranges",
    "changelog_entry",
    "commit_message",
    "describe_operation",
    "format_changed_code",
    "spec_digest",
    "summary_markdown",
]

_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")
_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}
_FORMATTABLE = (".py", ".pyi")


def _unquote_path(raw: str) -> str:
    """Undo git's C-style quoting of a path (used for names with quotes, tabs or newlines)."""
    if not (raw.startswith('"') and raw.endswith('"')):
        return raw
    body, out, i = raw[1:-1], bytearray(), 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt in "01234567":
                out.append(int(body[i + 1 : i + 4], 8))
                i += 4
                continue
            out.append(_ESCAPES.get(nxt, ord(nxt)))
            i += 2
            continue
        out += ch.encode("utf-8", "surrogateescape")
        i += 1
    return out.decode("utf-8", "surrogateescape")


def _parse_unified_zero(diff: str) -> dict[str, list[tuple[int, int]]]:
    """New-side line ranges per file from `git diff -U0` output; pure deletions give no range."""
    ranges: dict[str, list[tuple[int, int]]] = {}
    current: str | None = None
    in_header = False
    for line in diff.splitlines():
        if line.startswith("diff --git "):
            in_header, current = True, None
        elif in_header and line.startswith("+++ "):
            target = _unquote_path(line[4:])
            current = None if target == "/dev/null" else target.removeprefix("b/")
        elif line.startswith("@@"):
            in_header = False
            match = _HUNK.match(line)
            if match and current is not None:
                start, count = int(match.group(1)), int(match.group(2) or "1")
                if count > 0:
                    ranges.setdefault(current, []).append((start, start + count - 1))
    return ranges


def _whole_file_range(path: Path) -> tuple[int, int] | None:
    """Lines 1..n of a new text file; None for empty, binary or non-regular files."""
    if path.is_symlink() or not path.is_file():
        return None
    data = path.read_bytes()
    if not data or b"\0" in data[:8000]:
        return None
    return (1, len(data.splitlines()))


def changed_line_ranges(wt: Worktree) -> dict[str, list[tuple[int, int]]]:
    """Inclusive 1-based line ranges, in the worktree's files, that differ from the base commit."""
    proc = run_git(
        ["diff", "-U0", "--no-renames", "--no-color", "--no-ext-diff", "--no-textconv",
         "--src-prefix=a/", "--dst-prefix=b/", wt.base_commit, "--"],
        wt.path,
    )
    ranges = _parse_unified_zero(proc.stdout.decode("utf-8", "surrogateescape"))
    for rel in untracked_files(wt.path):
        whole = _whole_file_range(wt.path / rel)
        if whole is not None:
            ranges[rel] = [whole]
    return ranges


def _merge_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


_TOML_LIMIT = 1024 * 1024


def _read_toml(path: Path) -> dict[str, Any] | None:
    try:
        return tomllib.loads(read_file(path.parent, path.name, limit=_TOML_LIMIT).decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, UnsafePathError):
        return None


def _black_args(black: dict[str, Any]) -> list[str]:
    """Ruff format flags that reproduce a `[tool.black]` section's layout settings."""
    args: list[str] = []
    if isinstance(black.get("line-length"), int):
        args += ["--line-length", str(black["line-length"])]
    if black.get("skip-string-normalization") is True:
        args += ["--config", "format.quote-style = 'preserve'"]
    if black.get("skip-magic-trailing-comma") is True:
        args += ["--config", "format.skip-magic-trailing-comma = true"]
    return args


def ruff_config_args(wt_path: Path, rel: str, ruff_config: Path | None) -> list[str]:
    """Config flags for formatting `rel`: none when the repo has a ruff config (ruff finds it),
    its black settings when it has only black's, else `ruff_config` (or ruff's defaults).
    """
    fallback = ["--config", str(ruff_config)] if ruff_config is not None else ["--isolated"]
    root = wt_path.resolve()
    folder = (root / rel).parent
    while True:
        if (folder / ".ruff.toml").is_file() or (folder / "ruff.toml").is_file():
            return []
        pyproject = folder / "pyproject.toml"
        data = _read_toml(pyproject) if pyproject.is_file() else None
        tool = cast(dict[str, Any], data.get("tool", {})) if data is not None else {}
        if "ruff" in tool:
            return []
        if isinstance(tool.get("black"), dict):
            return fallback + _black_args(cast(dict[str, Any], tool["black"]))
        if folder == root or root not in folder.parents:
            return fallback
        folder = folder.parent


def _format_range(
    python: str, wt_path: Path, rel: str, span: tuple[int, int], config: list[str]
) -> bool:
    """Format one line range of one file in place; False when ruff cannot parse the file."""
    start, end = span
    cmd = [python, "-m", "ruff", "format", "--no-cache", "--force-exclude", *config,
           f"--range={start}:1-{end + 1}:1", "--", rel]
    try:
        proc = subprocess.run(cmd, cwd=wt_path, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DiffuseLLMError(f"could not run ruff format on {rel}: {exc}",
                              hint="check that ruff is installed for the worker's python") from None
    if proc.returncode == 0:
        return True
    if "Failed to parse" in proc.stderr:
        return False
    raise DiffuseLLMError(f"ruff format failed on {rel}: {proc.stderr.strip()[-2000:]}",
                          hint="check the repository's ruff configuration")


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def format_changed_code(
    wt_path: Path, changed: Mapping[str, list[tuple[int, int]]], ruff_config: Path | None,
    python: str,
) -> list[str]:
    """Run `ruff format --range` on each changed range of each changed Python file.

    Ranges go bottom-up so earlier line numbers stay valid; code outside the ranges (beyond the
    statements they touch) keeps its bytes. Returns the files whose content changed.
    """
    reformatted: list[str] = []
    for rel in sorted(changed):
        path = wt_path / rel
        if not rel.endswith(_FORMATTABLE) or not is_plain_file(wt_path, rel):
            continue
        before = path.read_bytes()
        if not _utf8(before):  # ruff reads only UTF-8; a PEP 263 file stays as the operation wrote it
            continue
        config = ruff_config_args(wt_path, rel, ruff_config)
        for span in reversed(_merge_ranges(list(changed[rel]))):
            if not _format_range(python, wt_path, rel, span, config):
                break
        if path.read_bytes() != before:
            reformatted.append(rel)
    return reformatted
