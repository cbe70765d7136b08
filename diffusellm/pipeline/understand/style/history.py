"""Phase 1 style profiling: commit-message convention from git history, changelog format."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from pathlib import Path
from typing import cast

from diffusellm.errors import RepositoryError
from diffusellm.pipeline.understand.style.config import read_text, toml_table
from diffusellm.pipeline.understand.style.profile import ChangelogInfo, CommitConvention
from diffusellm.pipeline.workspace import run_git

_CONVENTIONAL = re.compile(
    r"^(feat|feature|fix|bugfix|hotfix|docs?|style|refactor|perf|tests?|build|ci|chore|revert"
    r"|deps|release|security)(\([^)\n]*\))?!?: \S",
    re.IGNORECASE,
)
_GITMOJI_CODE = re.compile(r"^:[a-z0-9_+-]+:")
_BRACKETED = re.compile(r"^\[[^\]\n]+\]\s*\S")
_STRUCTURED: tuple[CommitConvention, ...] = ("conventional", "gitmoji", "bracketed")
_STRUCTURED_SHARE = 0.4  # histories mix styles (bots, reverts); a steady 40% sets the tone

_CHANGELOG_STEMS = ("changelog", "changes", "history", "news")
_CHANGELOG_SUFFIXES = (".md", ".markdown", ".rst", ".txt", "")
_FRAGMENT_DIRS = ("changelog.d", "newsfragments", "news", "changes")
_TOWNCRIER_TYPES = ["feature", "bugfix", "doc", "removal", "misc"]
_NOT_FRAGMENTS = frozenset({"readme", "template", "_template", "changelog"})
_KAC_SECTION = re.compile(r"^\[?(added|changed|deprecated|removed|fixed|security)\]?$", re.I)
_UNRELEASED = re.compile(r"\bunreleased\b", re.IGNORECASE)
_RST_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+])\1{2,}\s*$")
_READ_LIMIT = 256 * 1024


def recent_subjects(root: Path, limit: int = 200) -> list[str]:
    """Subjects of the last `limit` non-merge commits, newest first; empty without git history."""
    try:
        done = run_git(["log", f"-n{limit}", "--no-merges", "--format=%s"], root, check=False)
    except (OSError, RepositoryError):
        return []
    if done.returncode != 0:
        return []
    lines = done.stdout.decode("utf-8", "replace").splitlines()
    return [line.strip() for line in lines if line.strip()]


def commit_style(subject: str) -> CommitConvention:
    """The convention one subject follows; any unstructured subject counts as `imperative`."""
    if _CONVENTIONAL.match(subject):
        return "conventional"
    first = subject[:1]
    if _GITMOJI_CODE.match(subject) or (first and unicodedata.category(first) == "So"):
        return "gitmoji"
    if _BRACKETED.match(subject):
        return "bracketed"
    return "imperative"


def commit_convention(subjects: list[str]) -> tuple[CommitConvention, list[str]]:
    """The history's convention and up to five recent subjects that follow it."""
    if not subjects:
        return "none", []
    votes = Counter(commit_style(s) for s in subjects)
    top = max(_STRUCTURED, key=lambda style: votes[style])
    convention = top if votes[top] >= _STRUCTURED_SHARE * len(subjects) else "imperative"
    examples = [s for s in subjects if commit_style(s) == convention][:5]
    return convention, examples or subjects[:5]


def _towncrier_types(config: dict[str, object]) -> list[str]:
    """Fragment types in config order: `[[tool.towncrier.type]]` or `[tool.towncrier.fragment]`."""
    entries = config.get("type")
    if isinstance(entries, list):
        types: list[str] = []
        for entry in cast(list[object], entries):
            if isinstance(entry, dict):
                directory = cast(dict[str, object], entry).get("directory")
                if isinstance(directory, str):
                    types.append(directory)
        if types:
            return types
    fragments = config.get("fragment")
    if isinstance(fragments, dict) and fragments:
        return [str(k) for k in cast(dict[str, object], fragments)]
    return list(_TOWNCRIER_TYPES)


def _towncrier_directory(root: Path, config: dict[str, object]) -> str:
    directory = config.get("directory")
    if isinstance(directory, str) and directory.strip():
        return Path(directory.strip()).as_posix()
    package = config.get("package")
    if isinstance(package, str) and package:
        base = config.get("package_dir")
        parts = [base] if isinstance(base, str) and base not in ("", ".") else []
        return "/".join([*parts, *package.split("."), "newsfragments"])
    return _fragment_dir(root) or "newsfragments"


def _fragment_type(name: str) -> str | None:
    """The type of a towncrier fragment file name (`123.feature.md` → feature), else None."""
    parts = name.split(".")
    if name.startswith(".") or len(parts) < 2 or parts[0].lower() in _NOT_FRAGMENTS:
        return None
    kind = parts[1]
    return kind if kind.isidentifier() and kind not in ("py", "md", "rst", "txt") else None


def _looks_like_fragments(directory: Path) -> bool:
    """Whether a directory holds towncrier fragments (`123.feature.md`), not code or docs."""
    names = [p.name for p in directory.iterdir() if p.is_file()]
    if any(n.endswith(".py") for n in names):
        return False
    return any(_fragment_type(n) for n in names)


def _fragment_dir(root: Path) -> str | None:
    for name in _FRAGMENT_DIRS:
        directory = root / name
        if not directory.is_dir() or directory.is_symlink():
            continue
        strong = name in ("changelog.d", "newsfragments")
        if strong or _looks_like_fragments(directory):
            return name
    return None


def _types_from_fragments(directory: Path) -> list[str]:
    """Fragment types used by the files of a fragment directory, towncrier's defaults first."""
    found = {_fragment_type(p.name) for p in directory.iterdir() if p.is_file()}
    found.discard(None)
    if not found:
        return list(_TOWNCRIER_TYPES)
    known = [t for t in _TOWNCRIER_TYPES if t in found]
    return known + sorted(t for t in found if t is not None and t not in known)


def _rst_heading(lines: list[str], index: int) -> bool:
    return index + 1 < len(lines) and bool(_RST_UNDERLINE.match(lines[index + 1])) and bool(
        lines[index].strip()
    )


def keepachangelog_info(path: Path, rel: str) -> ChangelogInfo | None:
    """Keep-a-Changelog details of a changelog file; None when it lacks that structure."""
    text = read_text(path, _READ_LIMIT)
    lines = text.splitlines()
    rst = path.suffix.lower() == ".rst"
    unreleased: str | None = None
    sections = 0
    for index, line in enumerate(lines):
        heading = _rst_heading(lines, index) if rst else line.lstrip().startswith("#")
        if not heading:
            continue
        title = line.strip().lstrip("#").strip()
        if unreleased is None and _UNRELEASED.search(title):
            unreleased = line.rstrip()
        sections += bool(_KAC_SECTION.match(title))
    if unreleased is None and not sections and "keepachangelog" not in text.lower():
        return None
    return ChangelogInfo(format="keepachangelog", path=rel, unreleased_heading=unreleased)


def _changelog_files(root: Path) -> list[Path]:
    by_name = {p.name.lower(): p for p in root.iterdir() if p.is_file() and not p.is_symlink()}
    return [
        by_name[f"{stem}{suffix}"]
        for stem in _CHANGELOG_STEMS
        for suffix in _CHANGELOG_SUFFIXES
        if f"{stem}{suffix}" in by_name
    ]


def _towncrier_config(root: Path) -> dict[str, object] | None:
    for name in ("towncrier.toml", ".towncrier.toml", "pyproject.toml"):
        config = toml_table(root / name, "tool", "towncrier")
        if config is not None:
            return config
    return None


def changelog_info(root: Path) -> ChangelogInfo:
    """How the repository records changes: towncrier config, a Keep-a-Changelog file, fragments."""
    config = _towncrier_config(root)
    if config is not None:
        return ChangelogInfo(format="towncrier", path=_towncrier_directory(root, config),
                             fragment_types=_towncrier_types(config))
    fragments = _fragment_dir(root)
    if fragments in ("changelog.d", "newsfragments"):
        return ChangelogInfo(format="towncrier", path=fragments,
                             fragment_types=_types_from_fragments(root / fragments))
    for path in _changelog_files(root):
        info = keepachangelog_info(path, path.name)
        if info is not None:
            return info
    if fragments is not None:
        return ChangelogInfo(format="towncrier", path=fragments,
                             fragment_types=_types_from_fragments(root / fragments))
    return ChangelogInfo()
