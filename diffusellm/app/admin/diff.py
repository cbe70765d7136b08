"""Admin pages, the job's patch: a unified diff split into files, each line classed for colour."""

from __future__ import annotations

from dataclasses import dataclass, field

OPEN_LINES = 400
"""Files with more diff lines than this start collapsed."""


@dataclass(frozen=True)
class DiffLine:
    """One line of a file's diff: `kind` is add, del, hunk, meta or ctx."""

    kind: str
    text: str


@dataclass
class DiffFile:
    """The diff of one file."""

    path: str
    lines: list[DiffLine] = field(default_factory=list[DiffLine])
    added: int = 0
    removed: int = 0

    @property
    def open(self) -> bool:
        """Whether the page shows this file expanded at first."""
        return len(self.lines) <= OPEN_LINES


def _path(line: str) -> str:
    """The path of a `--- a/x` / `+++ b/x` line (`/dev/null` for a created or deleted file)."""
    name = line[4:].split("\t", 1)[0].strip()
    return name[2:] if name.startswith(("a/", "b/")) else name


def _git_header_path(line: str) -> str:
    """`diff --git a/x b/x` → x (the b side)."""
    _, _, right = line.partition(" b/")
    return right.strip() or line.removeprefix("diff --git ").strip()


def _kind(line: str, in_hunk: bool) -> str:
    if line.startswith("@@"):
        return "hunk"
    if in_hunk and line.startswith("+"):
        return "add"
    if in_hunk and line.startswith("-"):
        return "del"
    return "ctx" if in_hunk and line.startswith((" ", "\\")) or in_hunk and not line else "meta"


def _starts_file(lines: list[str], index: int, current: DiffFile | None) -> bool:
    line = lines[index]
    if line.startswith("diff --git "):
        return True
    following = lines[index + 1] if index + 1 < len(lines) else ""
    bare = line.startswith("--- ") and following.startswith("+++ ")
    # Without `diff --git` headers, a `---`/`+++` pair opens the next file once this one has changes.
    return bare and (current is None or any(d.kind != "meta" for d in current.lines))


def split_patch(patch: str) -> list[DiffFile]:
    """The files of a unified diff (git's, or plain `---`/`+++` pairs), in order."""
    files: list[DiffFile] = []
    current: DiffFile | None = None
    in_hunk = False
    lines = patch.splitlines()
    for index, line in enumerate(lines):
        if _starts_file(lines, index, current):
            header = line.startswith("diff --git ")
            current = DiffFile(_git_header_path(line) if header else "")
            files.append(current)
            in_hunk = False
        if current is None:
            current = DiffFile("")
            files.append(current)
        in_hunk = in_hunk or line.startswith("@@")
        kind = _kind(line, in_hunk)
        if line.startswith("+++ ") and not in_hunk:
            target = _path(line)
            current.path = target if target != "/dev/null" else current.path
            in_hunk = True  # the file's body follows (a hand-written diff may have no @@ line)
        elif line.startswith("--- ") and not in_hunk and not current.path:
            current.path = _path(line)
        current.lines.append(DiffLine(kind, line))
        current.added += kind == "add"
        current.removed += kind == "del"
    return [f for f in files if f.lines]
