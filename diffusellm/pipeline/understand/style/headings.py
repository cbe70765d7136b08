"""Phase 1 style profiling: the headings of a Markdown or reStructuredText changelog, and its version sections."""

from __future__ import annotations

import re
from dataclasses import dataclass

_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_RST_ADORNMENT = re.compile(r"^([=\-~^\"'`#*+.:_])\1{2,}\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_VERSION = re.compile(r"\d+(?:\.\d+)+")
_DEV_WORDS = re.compile(
    r"\b(unreleased|in development|not yet released|upcoming|dev|development|main|master|next)\b", re.I
)
_DEV_VERSION = re.compile(r"\d+(?:\.\d+)*\.?dev\d*\b", re.I)


@dataclass(frozen=True)
class Heading:
    """One heading: where its block starts and ends, its level and its text."""

    start: int
    """Index of the heading's first line (the overline of an overlined rst title)."""
    index: int
    """Index of the title line."""
    body: int
    """Index of the first line after the heading block."""
    level: str
    """`##` for Markdown; the adornment character (`-`, or `=o` when overlined) for rst."""
    title: str
    markdown: bool

    @property
    def line(self) -> str:
        """The heading as it would be searched for: the Markdown line, or the rst title."""
        return f"{self.level} {self.title}" if self.markdown else self.title

    @property
    def unreleased(self) -> bool:
        """Whether the title names a section not yet released ("Unreleased", "dev", "1.2.dev0")."""
        return is_unreleased(self.title)


def is_unreleased(title: str) -> bool:
    """Whether a section title reads as not yet released; bare words only in short titles."""
    if _DEV_VERSION.search(title):
        return True
    if not _DEV_WORDS.search(title):
        return False
    return bool(_VERSION.search(title)) or len(re.findall(r"\w+", title)) <= 3


def is_versionish(title: str) -> bool:
    """Whether a title heads a release: it carries a version number or reads as unreleased."""
    return bool(_VERSION.search(title)) or is_unreleased(title)


def _markdown(lines: list[str]) -> list[Heading]:
    found: list[Heading] = []
    fenced = False
    for i, line in enumerate(lines):
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and (match := _MD_HEADING.match(line)):
            found.append(Heading(i, i, i + 1, match.group(1), match.group(2), True))
    return found


def _rst(lines: list[str]) -> list[Heading]:
    found: list[Heading] = []
    i = 0
    while i + 1 < len(lines):
        title, under = lines[i], lines[i + 1]
        match = _RST_ADORNMENT.match(under)
        usable = title.strip() and not title.startswith((" ", "\t", "..")) and not _RST_ADORNMENT.match(title)
        if match and usable and len(under.rstrip()) >= len(title.rstrip()) * 0.6:
            over = i > 0 and lines[i - 1].rstrip() == under.rstrip()
            level = match.group(1) + ("o" if over else "")
            found.append(Heading(i - 1 if over else i, i, i + 2, level, title.strip(), False))
            i += 2
            continue
        i += 1
    return found


def headings(lines: list[str], *, rst: bool) -> list[Heading]:
    """The headings of a changelog: rst adornments for `.rst` files, Markdown `#` headings otherwise
    (and rst adornments for a plain-text file that has no Markdown heading)."""
    if rst:
        return _rst(lines)
    return _markdown(lines) or _rst(lines)


def version_sections(found: list[Heading]) -> list[Heading]:
    """The release sections, newest first: headings at the level of the first release-like one."""
    first = next((h for h in found if is_versionish(h.title)), None)
    if first is None:
        return []
    return [h for h in found if h.level == first.level and h.start >= first.start and is_versionish(h.title)]
