"""Phase 7 commit builder, changelog: an entry in a file of version sections (Pallets, HISTORY / CHANGES / NEWS)."""

from __future__ import annotations

import re

from diffusellm.pipeline.understand.style.headings import Heading, headings, version_sections
from diffusellm.pipeline.understand.style.profile import ChangelogInfo

_VERSION = re.compile(r"\d+(?:\.\d+)+")
_TOP_BULLET = re.compile(r"^[-*+]\s+\S")
_STATUS = re.compile(r"^(unreleased|released\b)", re.I)
_LABEL = re.compile(r"^\.\. _[^:]+:\s*$")


def next_version(title: str) -> str | None:
    """The version after the one in `title`, its last number raised (`8.5.1` → `8.5.2`)."""
    match = _VERSION.search(title)
    if match is None:
        return None
    parts = match.group(0).split(".")
    parts[-1] = str(int(parts[-1]) + 1)
    return ".".join(parts)


def _status_line(lines: list[str], heading: Heading) -> int | None:
    """Index of a Pallets "Unreleased" / "Released DATE" line just under `heading`."""
    for i in range(heading.body, min(heading.body + 3, len(lines))):
        if lines[i].strip():
            return i if _STATUS.match(lines[i].strip()) else None
    return None


def _open(lines: list[str], top: Heading, pallets: bool) -> bool:
    """Whether the top section is not released yet: its title says so, or its Pallets status line."""
    if top.unreleased:
        return True
    status = _status_line(lines, top) if pallets else None
    return status is not None and lines[status].strip().lower().startswith("unreleased")


def _list_end(lines: list[str], start: int, end: int) -> int | None:
    """Index after the last line of the first top-level bullet list in [start, end); None without one."""
    first = next((i for i in range(start, end) if _TOP_BULLET.match(lines[i])), None)
    if first is None:
        return None
    last = first
    for i in range(first + 1, end):
        line = lines[i]
        if _TOP_BULLET.match(line) or (line.startswith((" ", "\t")) and line.strip()):
            last = i
        elif line.strip():
            break
    return last + 1


def _add_to_top(lines: list[str], sections: list[Heading], entry: str, pallets: bool) -> list[str]:
    top = sections[0]
    end = sections[1].start if len(sections) > 1 else len(lines)
    after_list = _list_end(lines, top.body, end)
    if after_list is not None:
        return lines[:after_list] + [entry] + lines[after_list:]
    status = _status_line(lines, top) if pallets else None
    at = (status + 1) if status is not None else top.body
    block = ["", entry]
    if at < len(lines) and lines[at].strip():
        block.append("")
    return lines[:at] + block + lines[at:]


def _heading_lines(top: Heading, title: str) -> list[str]:
    if top.markdown:
        return [f"{top.level} {title}"]
    char = top.level[0]
    rule = char * max(len(title), 3)
    return [rule, title, rule] if top.level.endswith("o") else [title, rule]


def _new_title(info: ChangelogInfo, top: Heading, pallets: bool) -> str:
    version = next_version(top.title)
    if pallets and version is not None:
        return f"Version {version}"
    template = info.new_section
    if template and ("{version}" not in template or version is not None):
        return template.replace("{version}", version or "")
    return "Unreleased"


def _new_section(lines: list[str], top: Heading, info: ChangelogInfo, entry: str, pallets: bool) -> list[str]:
    """Start an unreleased section above the newest release, the way the file titles its sections."""
    block = [*_heading_lines(top, _new_title(info, top, pallets)), ""]
    if pallets:
        block += ["Unreleased", ""]
    block += [entry, ""]
    at = top.start
    if at >= 2 and _LABEL.match(lines[at - 2]) and not lines[at - 1].strip():
        at -= 2  # an rst jump target belongs to the release below it
    return lines[:at] + block + lines[at:]


def insert_section_entry(text: str, info: ChangelogInfo, entry_text: str, *, rst: bool) -> str:
    """`text` plus a bullet for `entry_text` in the section not yet released, started when missing."""
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = text.splitlines()
    entry = f"{info.bullet}{entry_text}"
    sections = version_sections(headings(lines, rst=rst))
    pallets = info.format == "pallets"
    if not sections:
        title = "Unreleased"
        rule = ["-" * len(title)] if rst else []
        head = [title, *rule] if rst else [f"## {title}"]
        lead = [""] if lines and lines[-1].strip() else []
        return newline.join([*lines, *lead, *head, "", entry]) + newline
    if _open(lines, sections[0], pallets):
        lines = _add_to_top(lines, sections, entry, pallets)
    else:
        lines = _new_section(lines, sections[0], info, entry, pallets)
    return newline.join(lines) + newline
