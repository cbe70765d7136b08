"""Phase 7 commit builder, changelog: an entry where the maintainers write one (Keep a Changelog,
Pallets or version sections, towncrier or scriv fragment), in their bullet and citation style."""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from diffusellm.errors import RepositoryError
from diffusellm.pipeline.deliver.sections import insert_section_entry
from diffusellm.pipeline.paths import UnsafePathError, check_path, read_file, write_file
from diffusellm.pipeline.spec import Spec
from diffusellm.pipeline.understand.style.profile import ChangelogInfo
from diffusellm.pipeline.workspace import slugify

DEFAULT_FRAGMENT_TYPES = ("feature", "bugfix", "doc", "removal", "misc")
_ADD_TYPES = ("feature", "features", "added", "feat", "enhancement")
_REFACTOR_TYPES = ("misc", "changed", "change", "refactor", "internal")
# keepachangelog's subsection order; a new "Changed" goes before the first later one present.
_KAC_ORDER = ("added", "changed", "deprecated", "removed", "fixed", "security")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^([-*+]) \S")
_UNRELEASED = re.compile(r"^\[?unreleased\]?\b", re.IGNORECASE)
_CONFIG_LIMIT = 1024 * 1024


def _inside(wt_path: Path, rel: str) -> Path:
    """`wt_path/rel`, refusing paths that leave the worktree, enter .git/ or pass through a link."""
    try:
        check_path(wt_path, rel)
    except UnsafePathError as exc:
        raise RepositoryError(f"changelog path {rel!r}: {exc.message}",
                              hint="fix the changelog path in the style profile") from None
    return wt_path / rel


def _heading(line: str) -> tuple[int, str] | None:
    match = _HEADING.match(line)
    return (len(match.group(1)), match.group(2)) if match else None


def _next_heading(lines: list[str], start: int, max_level: int) -> int:
    """Index of the first heading after `start` with level ≤ `max_level`, or len(lines)."""
    for i in range(start + 1, len(lines)):
        found = _heading(lines[i])
        if found and found[0] <= max_level:
            return i
    return len(lines)


def _last_content(lines: list[str], start: int, end: int) -> int:
    """Index of the last non-blank line in (start, end), or `start` when there is none."""
    last = end - 1
    while last > start and not lines[last].strip():
        last -= 1
    return last


def _find_unreleased(lines: list[str], exact: str | None) -> int | None:
    for i, line in enumerate(lines):
        if exact is not None and line.strip() == exact.strip():
            return i
    for i, line in enumerate(lines):
        found = _heading(line)
        if found and _UNRELEASED.match(found[1]):
            return i
    return None


def _insert_block(lines: list[str], at: int, block: list[str]) -> list[str]:
    """Insert `block` at `at`, keeping one blank line before a heading that follows it."""
    after = lines[at:]
    if after and after[0].strip() and block[-1].strip():
        block = [*block, ""]
    return lines[:at] + block + after


def _add_to_section(lines: list[str], start: int, entry: str) -> list[str]:
    """Add `entry` under the "Changed" subsection of the section whose heading is at `start`."""
    level = (_heading(lines[start]) or (2, ""))[0]
    end = _next_heading(lines, start, level)
    sub_level = "#" * (level + 1)
    subs = [
        (i, h) for i in range(start + 1, end) if (h := _heading(lines[i])) and h[0] == level + 1
    ]
    changed = next((i for i, h in subs if h[1].strip().lower() == "changed"), None)
    if changed is not None:
        sub_end = _next_heading(lines, changed, level + 1)
        last = _last_content(lines, changed, sub_end)
        block = ["", entry] if last == changed else [entry]
        return _insert_block(lines, last + 1, block)
    later = [i for i, h in subs if h[1].strip().lower() in _KAC_ORDER[2:]]
    block = [f"{sub_level} Changed", "", entry]
    if later:
        return _insert_block(lines, later[0], [*block, ""])
    return _insert_block(lines, _last_content(lines, start, end) + 1, ["", *block])


def _new_unreleased(lines: list[str], entry: str, heading: str | None) -> list[str]:
    """Add an Unreleased section (with a Changed subsection) before the first release heading."""
    releases = [i for i, line in enumerate(lines) if (h := _heading(line)) and h[0] >= 2]
    level = (_heading(lines[releases[0]]) or (2, ""))[0] if releases else 2
    title = heading.strip() if heading else f"{'#' * level} [Unreleased]"
    block = [title, "", f"{'#' * (level + 1)} Changed", "", entry]
    if releases:
        return _insert_block(lines, releases[0], [*block, ""])
    lead = [""] if lines and lines[-1].strip() else []
    return lines + lead + block


def insert_keepachangelog(text: str, entry_text: str, unreleased_heading: str | None) -> str:
    """`text` plus a bullet for `entry_text` under Unreleased → Changed, in the file's style."""
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = text.splitlines()
    bullets = [m.group(1) for line in lines if (m := _BULLET.match(line))]
    entry = f"{bullets[0] if bullets else '-'} {entry_text}"
    if not lines:
        lines = ["# Changelog", ""]
    start = _find_unreleased(lines, unreleased_heading)
    if start is None:
        lines = _new_unreleased(lines, entry, unreleased_heading)
    else:
        lines = _add_to_section(lines, start, entry)
    return newline.join(lines) + newline


def entry_text(
    spec: Spec, issue_number: int | None, reference: str | None, *, sentence: bool = False, cite: str | None = None
) -> str:
    """The spec's title as one entry, citing the issue the way the file does (`cite` when the file
    shows no way); `sentence` ends it with a full stop, as prose changelogs do."""
    text = " ".join(spec.title.split()).rstrip(".")
    if sentence and text and text[-1] not in "!?":
        text += "."
    template = reference or cite
    if issue_number is None or template is None:
        return text
    return f"{text} {template.replace('{n}', str(issue_number))}"


def _edit_file(info: ChangelogInfo, wt_path: Path, default: str, edit: Callable[[str], str]) -> str:
    rel = info.path or default
    path = _inside(wt_path, rel)
    try:
        text = read_file(wt_path, rel).decode("utf-8") if os.path.lexists(path) else ""
    except UnicodeDecodeError:
        raise RepositoryError(f"{rel} is not UTF-8", hint="convert it to UTF-8") from None
    except UnsafePathError as exc:
        raise RepositoryError(f"changelog {exc.message}", hint=exc.hint) from None
    write_file(wt_path, rel, edit(text).encode("utf-8"))
    return rel


def _keepachangelog(info: ChangelogInfo, spec: Spec, wt_path: Path, issue: int | None) -> str:
    entry = entry_text(spec, issue, info.reference, cite="(#{n})")
    return _edit_file(info, wt_path, "CHANGELOG.md",
                      lambda text: insert_keepachangelog(text, entry, info.unreleased_heading))


def _sections(info: ChangelogInfo, spec: Spec, wt_path: Path, issue: int | None) -> str:
    entry = entry_text(spec, issue, info.reference, sentence=True)
    rst = (info.path or "").lower().endswith(".rst")
    return _edit_file(info, wt_path, "CHANGES.rst" if rst else "CHANGES.md",
                      lambda text: insert_section_entry(text, info, entry, rst=rst))


def _scriv(info: ChangelogInfo, spec: Spec, wt_path: Path, issue: int | None, now: dt.datetime) -> str:
    """A scriv fragment: `news/20260101_120000_diffusellm_<slug>.rst` holding the bullet, under a
    category heading when the project configures categories."""
    rel_dir = info.path or "changelog.d"
    folder = _inside(wt_path, rel_dir)
    names = [p.name for p in folder.iterdir() if p.is_file()] if folder.is_dir() and not folder.is_symlink() else []
    suffix = ".md" if any(n.endswith((".md", ".md.j2")) for n in names) else ".rst"
    entry = f"- {entry_text(spec, issue, info.reference, sentence=True, cite='(#{n})')}"
    body = [entry]
    if info.fragment_types:
        category = fragment_type(spec, info.fragment_types)
        head = [f"### {category}"] if suffix == ".md" else [category, "-" * len(category)]
        body = [*head, "", entry]
    name = f"{now.strftime('%Y%m%d_%H%M%S')}_diffusellm_{slugify(spec.title, 40)}{suffix}"
    rel = f"{rel_dir.rstrip('/')}/{name}"
    try:
        write_file(wt_path, rel, ("\n".join(body) + "\n").encode("utf-8"))
    except UnsafePathError as exc:
        raise RepositoryError(f"changelog {exc.message}", hint=exc.hint) from None
    return rel


def fragment_type(spec: Spec, types: list[str]) -> str:
    """The towncrier type for the change: a feature type when it adds, a misc/changed one else."""
    adds = any(op.op.startswith("add_") for op in spec.operations)
    preferred = (*_ADD_TYPES, *_REFACTOR_TYPES) if adds else (*_REFACTOR_TYPES, *_ADD_TYPES)
    lowered = {t.lower(): t for t in types}
    return next((lowered[p] for p in preferred if p in lowered), types[0])


def _fragment_suffix(folder: Path, types: list[str], wt_path: Path) -> str:
    """The extension existing fragments use (".md", ".rst" or ""), else one fitting the config."""
    seen: Counter[str] = Counter()
    names = [p.name for p in folder.iterdir() if p.is_file() and not p.is_symlink()] if folder.is_dir() else []
    for name in names:
        parts = name.split(".")
        idx = next((i for i in range(len(parts) - 1, 0, -1) if parts[i] in types), None)
        if idx is None:
            continue
        rest = parts[idx + 1 :]
        if rest and rest[0].isdigit():
            rest = rest[1:]
        seen["." + ".".join(rest) if rest else ""] += 1
    if seen:
        return seen.most_common(1)[0][0]
    return ".rst" if _towncrier_writes_rst(wt_path) else ".md"


def _towncrier_writes_rst(wt_path: Path) -> bool:
    for name in ("towncrier.toml", "pyproject.toml"):
        try:
            data = tomllib.loads(read_file(wt_path, name, limit=_CONFIG_LIMIT).decode("utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, UnsafePathError):
            continue
        tool: object = data.get("tool", {})
        section = cast(dict[str, Any], tool).get("towncrier") if isinstance(tool, dict) else None
        config = cast(dict[str, Any], section) if isinstance(section, dict) else {}
        filename = config.get("filename")
        if isinstance(filename, str):
            return filename.endswith(".rst")
    return False


def _towncrier(
    info: ChangelogInfo, spec: Spec, wt_path: Path, job_id: str | None, issue: int | None
) -> str:
    rel_dir = info.path or "newsfragments"
    folder = _inside(wt_path, rel_dir)
    types = info.fragment_types or list(DEFAULT_FRAGMENT_TYPES)
    kind = fragment_type(spec, types)
    suffix = _fragment_suffix(folder, types, wt_path)
    # Without an issue, towncrier's "+" prefix marks an orphan fragment (no issue link rendered).
    stem = str(issue) if issue is not None else f"+{slugify(spec.title, 40)}"
    if issue is None and job_id:
        stem += f"-{slugify(job_id, 12)}"
    name, counter = f"{stem}.{kind}{suffix}", 0
    while os.path.lexists(folder / name):
        counter += 1
        name = f"{stem}.{kind}.{counter}{suffix}"
    text = " ".join(spec.title.split()).rstrip(".") + ".\n"
    write_file(wt_path, f"{rel_dir.rstrip('/')}/{name}", text.encode("utf-8"))
    return f"{rel_dir.rstrip('/')}/{name}"


def changelog_entry(
    info: ChangelogInfo,
    spec: Spec,
    wt_path: Path,
    *,
    job_id: str | None = None,
    issue_number: int | None = None,
    now: dt.datetime | None = None,
) -> str | None:
    """Record the change the repository's way; the path written (relative), or None for no log.

    `now` names scriv fragments (the current UTC time when None)."""
    if info.format == "keepachangelog":
        return _keepachangelog(info, spec, wt_path, issue_number)
    if info.format in ("pallets", "sections"):
        return _sections(info, spec, wt_path, issue_number)
    if info.format == "towncrier":
        return _towncrier(info, spec, wt_path, job_id, issue_number)
    if info.format == "scriv":
        return _scriv(info, spec, wt_path, issue_number, now or dt.datetime.now(dt.UTC))
    return None
