"""Phase 1 style profiling: the changelog a repository keeps, its format, file, entry style and evidence."""

from __future__ import annotations

import configparser
import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import cast

from diffusellm.pipeline.understand.style.config import read_text, toml_table
from diffusellm.pipeline.understand.style.headings import Heading, headings, is_unreleased, version_sections
from diffusellm.pipeline.understand.style.profile import ChangelogInfo

_STEMS = ("changelog", "changes", "history", "news", "release-notes", "release_notes")
_DOC_STEMS = (*_STEMS, "versions", "whatsnew", "whats-new", "whats_new")
_WHATSNEW_DIRS = ("docs/whatsnew", "doc/whatsnew", "docs/source/whatsnew", "doc/source/whatsnew")
_SUFFIXES = (".md", ".markdown", ".rst", ".txt", "")
_DOC_DIRS = ("docs", "doc", "docs/source", "doc/source")
_FRAGMENT_DIRS = ("changelog.d", "newsfragments", "news", "changes", "changelog", "docs/changelog")
_STRONG_FRAGMENT_DIRS = ("changelog.d", "newsfragments")
_TOWNCRIER_TYPES = ["feature", "bugfix", "doc", "removal", "misc"]
_NOT_FRAGMENTS = frozenset({"readme", "template", "_template", "changelog"})
_KAC_SECTION = re.compile(r"^\[?(added|changed|deprecated|removed|fixed|security)\]?$", re.I)
_KAC_MENTION = re.compile(r"keepachangelog|keep a changelog", re.I)
_UNRELEASED_WORD = re.compile(r"\bunreleased\b", re.I)
_PALLETS_TITLE = re.compile(r"^version\s+\d", re.I)
_PALLETS_STATUS = re.compile(r"^(unreleased|released\b)", re.I)
_VERSION = re.compile(r"\d+(?:\.\d+)+")
_BULLET = re.compile(r"^([-*+]\s+)\S")
_INCLUDE = re.compile(r"^\.\. include:: (\S+)\s*$", re.M)
_READ_LIMIT = 256 * 1024
# How entries cite issues; PR-only citations cannot be written before the PR exists.
_ISSUE_REFS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r":issue:`\d+`"), ":issue:`{n}`"),
    (re.compile(r"\{issue\}`\d+`"), "{issue}`{n}`"),
    (re.compile(r"\b(?:Fixes|Closes|Resolves) #\d+"), "Fixes #{n}"),
    (re.compile(r"\(#\d+\)"), "(#{n})"),
)
_LINK_REF = re.compile(r"(\()?\[#\d+\]\((https?://[^)\s]+?/)(?:issues|pull)/\d+\)(\))?")
_RST_LINK_REF = re.compile(r"(\()?`#\d+ <(https?://\S+?/)(?:issues|pull)/\d+>`__?(\))?")
_PR_REFS = re.compile(r":(?:pr|pull):`\d+`|\{pr\}`\d+`")


def _towncrier_types(config: dict[str, object]) -> list[str]:
    """Fragment types in config order: `[[tool.towncrier.type]]` or `[tool.towncrier.fragment]`."""
    entries = config.get("type")
    if isinstance(entries, list):
        types = [
            str(cast(dict[str, object], e)["directory"])
            for e in cast(list[object], entries)
            if isinstance(e, dict) and isinstance(cast(dict[str, object], e).get("directory"), str)
        ]
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
    return _fragment_dir(root, strong_only=False) or "newsfragments"


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


def _fragment_dir(root: Path, *, strong_only: bool) -> str | None:
    for name in _FRAGMENT_DIRS:
        directory = root / name
        if not directory.is_dir():
            continue
        if name in _STRONG_FRAGMENT_DIRS or (not strong_only and _looks_like_fragments(directory)):
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


def _towncrier(root: Path) -> ChangelogInfo | None:
    for name in ("towncrier.toml", ".towncrier.toml", "pyproject.toml"):
        config = toml_table(root / name, "tool", "towncrier")
        if config is not None:
            where = f"{name} [tool.towncrier]"
            return ChangelogInfo(format="towncrier", path=_towncrier_directory(root, config),
                                 fragment_types=_towncrier_types(config), evidence=[where])
    return None


def _scriv(root: Path) -> ChangelogInfo | None:
    """Scriv's config (`[tool.scriv]` or setup.cfg / scriv.ini `[scriv]`): its fragment directory."""
    config = toml_table(root / "pyproject.toml", "tool", "scriv")
    where = "pyproject.toml [tool.scriv]"
    if config is None:
        for name in ("setup.cfg", "scriv.ini", "tox.ini"):
            if "[scriv]" in read_text(root / name, 64 * 1024):
                config, where = _ini_section(root / name, "scriv"), f"{name} [scriv]"
                break
    if config is None:
        return None
    directory = config.get("fragment_directory")
    path = directory.strip() if isinstance(directory, str) and directory.strip() else "changelog.d"
    categories = config.get("categories")
    types = [str(c) for c in cast(list[object], categories)] if isinstance(categories, list) else []
    if isinstance(categories, str):
        types = [c.strip() for c in categories.split(",") if c.strip()]
    return ChangelogInfo(format="scriv", path=path.rstrip("/"), fragment_types=types, evidence=[where])


def _ini_section(path: Path, section: str) -> dict[str, object]:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(read_text(path))
    except configparser.Error:
        return {}
    return dict(parser.items(section)) if parser.has_section(section) else {}


def _candidate_files(root: Path) -> list[Path]:
    """Changelog-like files: at the root first, then in the documentation folders."""
    found: list[Path] = []
    for folder, stems in [("", _STEMS), *[(d, _DOC_STEMS) for d in _DOC_DIRS]]:
        base = root / folder if folder else root
        if not base.is_dir():
            continue
        by_name = {p.name.lower(): p for p in base.iterdir() if p.is_file()}
        found += [by_name[f"{s}{x}"] for s in stems for x in _SUFFIXES if f"{s}{x}" in by_name]
    return found


def _bullet(lines: list[str]) -> str:
    marks = [m.group(1) for line in lines[:400] if (m := _BULLET.match(line))]
    return Counter(marks).most_common(1)[0][0] if marks else "- "


def _reference(text: str) -> str | None:
    """The template entries cite an issue with, by majority; None for none or PR-only citations."""
    votes: Counter[str] = Counter()
    for pattern, template in _ISSUE_REFS:
        votes[template] += len(pattern.findall(text))
    for pattern, (before, after) in ((_LINK_REF, ("[#{n}](", "issues/{n})")),
                                     (_RST_LINK_REF, ("`#{n} <", "issues/{n}>`__"))):
        for match in pattern.finditer(text):
            wrapped = bool(match.group(1) and match.group(3))
            body = f"{before}{match.group(2)}{after}"
            votes[f"({body})" if wrapped else body] += 1
    if not votes or max(votes.values()) == 0:
        return None
    template, count = votes.most_common(1)[0]
    return None if len(_PR_REFS.findall(text)) > 2 * count else template


def _history_title(root: Path, rel: str, current: str | None) -> str | None:
    """A not-yet-released section title the file's git history shows, as a `{version}` template."""
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "log", "-n", "40", "--format=", "-p", "--", rel],
            capture_output=True, timeout=60, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    for raw in done.stdout.decode("utf-8", "replace").splitlines():
        if not raw.startswith(("+", "-")) or raw.startswith(("+++", "---")):
            continue
        title = raw[1:].strip().lstrip("#").strip()
        if title and title != (current or "").lstrip("#").strip() and _is_dev_title(title):
            return _VERSION.sub("{version}", title, count=1)
    return None


def _is_dev_title(title: str) -> bool:
    return len(title) <= 80 and is_unreleased(title)


def _pallets(lines: list[str], sections: list[Heading]) -> bool:
    """"Version X" headings, each followed by an "Unreleased" or "Released DATE" line."""
    titled = [h for h in sections if _PALLETS_TITLE.match(h.title)]
    if len(titled) * 2 < len(sections):
        return False
    for heading in titled[:3]:
        after = [line.strip() for line in lines[heading.body : heading.body + 4] if line.strip()]
        if after and _PALLETS_STATUS.match(after[0]):
            return True
    return False


def _kac(text: str, found: list[Heading], sections: list[Heading]) -> bool:
    if _KAC_MENTION.search(text):
        return True
    if any(h.title.startswith("[") and _UNRELEASED_WORD.search(h.title) for h in sections):
        return True
    level = sections[0].level if sections else None
    return any(h.level != level and _KAC_SECTION.match(h.title) for h in found)


def _classify(root: Path, path: Path) -> ChangelogInfo | None:
    """The format of one changelog file; None when it has no version sections."""
    rel = path.relative_to(root).as_posix()
    text = read_text(path, _READ_LIMIT)
    include = _INCLUDE.search(text)
    if include and len(text.strip().splitlines()) <= 6:
        return None  # a docs page that includes the real changelog, found on its own
    lines = text.splitlines()
    found = headings(lines, rst=path.suffix.lower() == ".rst")
    sections = version_sections(found)
    mention = bool(_KAC_MENTION.search(text))
    if not sections and not mention:
        return None
    top = sections[0] if sections else None
    unreleased = top.line if top is not None and top.unreleased else None
    if _kac(text, found, sections):
        fmt, why = "keepachangelog", "Keep a Changelog" + (" (named in the file)" if mention else " sections")
    elif _pallets(lines, sections):
        fmt, why = "pallets", "'Version X' headings with 'Unreleased' / 'Released' lines"
    else:
        fmt, why = "sections", "version sections, newest first"
    top_text = f"; top section '{top.title}'" if top is not None else ""
    return ChangelogInfo(
        format=fmt, path=rel, unreleased_heading=unreleased,
        new_section=None if fmt == "keepachangelog" else _history_title(root, rel, unreleased),
        bullet=_bullet(lines), reference=_reference(text), evidence=[f"{rel}: {why}{top_text}"],
    )


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path.stem)[:4])


def _whatsnew(root: Path) -> ChangelogInfo | None:
    """A folder of one release-notes page per version: the newest page, when it is not released yet."""
    for rel in _WHATSNEW_DIRS:
        folder = root / rel
        pages = [p for p in folder.iterdir() if p.is_file() and p.suffix in (".rst", ".md") and _version_key(p)] \
            if folder.is_dir() else []
        if not pages:
            continue
        newest = max(pages, key=_version_key)
        info = _classify(root, newest)
        page = newest.relative_to(root).as_posix()
        if info is not None and info.unreleased_heading is not None:
            return info.model_copy(update={"evidence": [f"{rel}/: one page per release", *info.evidence]})
        return ChangelogInfo(evidence=[f"{rel}/: one page per release; the newest, {page}, is released, "
                                       "and a page for the next release is the maintainers' to start"])
    return None


def changelog_info(root: Path) -> ChangelogInfo:
    """How the repository records changes: towncrier or scriv config, fragment folders, a changelog
    file (Keep a Changelog, Pallets, version sections); `none` with the places looked at."""
    configured = _towncrier(root) or _scriv(root)
    if configured is not None:
        return configured
    strong = _fragment_dir(root, strong_only=True)
    if strong is not None:
        return ChangelogInfo(format="towncrier", path=strong, fragment_types=_types_from_fragments(root / strong),
                             evidence=[f"{strong}/: a towncrier fragment folder"])
    for path in _candidate_files(root):
        info = _classify(root, path)
        if info is not None:
            return info
    pages = _whatsnew(root)
    if pages is not None:
        return pages
    weak = _fragment_dir(root, strong_only=False)
    if weak is not None:
        return ChangelogInfo(format="towncrier", path=weak, fragment_types=_types_from_fragments(root / weak),
                             evidence=[f"{weak}/: files named like towncrier fragments"])
    return ChangelogInfo(evidence=["no changelog file, fragment folder or towncrier/scriv config"])
