"""Phase 4, refactor support: names mentioned in docs, comments and strings; edits by position."""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable
from dataclasses import dataclass

from diffusellm.errors import OperationError

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_DOTTED = rf"{_IDENT}(?:\.{_IDENT})*"
# `name`, ``name``, :func:`~pkg.mod.name`, `name()`; the name must fill the backticks.
_BACKTICK = re.compile(rf"(?<!`)(`{{1,2}})[~!]?({_DOTTED})(?:\(\))?\1(?!`)")
_CODE_NAME = re.compile(rf"(?<![\w.]){_DOTTED}")
_DOCTEST_LINE = re.compile(r"^[ \t]*(?:>>>|\.\.\.)[ \t]+(.*)$", re.MULTILINE)
_WHOLE_DOTTED = re.compile(rf"^{_IDENT}(?:\.{_IDENT})+$")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class Mention:
    """A dotted name found in text: where its first part starts and its parts."""

    offset: int
    parts: tuple[str, ...]

    def offset_of(self, index: int) -> int:
        """Offset of part `index` in the scanned text."""
        return self.offset + sum(len(p) + 1 for p in self.parts[:index])


def backtick_mentions(text: str) -> list[Mention]:
    """Names written in backticks (Markdown or reST), as in docstrings and comments."""
    return [Mention(m.start(2), tuple(m.group(2).split("."))) for m in _BACKTICK.finditer(text)]


def code_mentions(text: str, base: int = 0) -> list[Mention]:
    """Dotted names in a fragment of code (a doctest line, a string annotation)."""
    return [Mention(base + found.start(), tuple(found.group(0).split(".")))
            for found in _CODE_NAME.finditer(text)]


def doctest_mentions(text: str) -> list[Mention]:
    """Dotted names on the `>>>` and `...` lines of a docstring."""
    found: list[Mention] = []
    for line in _DOCTEST_LINE.finditer(text):
        found.extend(code_mentions(line.group(1), line.start(1)))
    return found


def whole_dotted(text: str) -> Mention | None:
    """The string's text when it is exactly a dotted path with at least one dot (`pkg.mod.name`)."""
    return Mention(0, tuple(text.split("."))) if _WHOLE_DOTTED.match(text) else None


def advance(line: int, column: int, chunk: str) -> tuple[int, int]:
    """The position reached after `chunk` when it starts at (line, column)."""
    breaks = list(_LINE_BREAK.finditer(chunk))
    if not breaks:
        return line, column + len(chunk)
    return line + len(breaks), len(chunk) - breaks[-1].end()


def check_identifier(name: str, what: str) -> None:
    """Refuse Python keywords (`class`, `def`, ...) as new names."""
    if keyword.iskeyword(name):
        raise OperationError(
            f"{what} {name!r} is a Python keyword",
            hint="choose another name; nothing was changed",
        )


def _line_starts(text: str) -> list[int]:
    return [0, *(m.end() for m in _LINE_BREAK.finditer(text))]


def replace_at(text: str, rel: str, edits: Iterable[tuple[int, int]], old: str, new: str) -> str:
    """Replace the identifier `old` by `new` at each (line, column); refuse if one is not there."""
    starts = _line_starts(text)
    offsets: set[int] = set()
    for line, column in edits:
        offset = starts[line - 1] + column if 0 < line <= len(starts) else -1
        if offset < 0 or not _is_identifier_at(text, offset, old):
            raise OperationError(
                f"internal check failed: expected {old!r} at {rel}:{line}:{column}",
                hint="this is a bug in the rename; nothing was changed",
            )
        offsets.add(offset)
    for offset in sorted(offsets, reverse=True):
        text = text[:offset] + new + text[offset + len(old):]
    return text


def _is_identifier_at(text: str, offset: int, name: str) -> bool:
    """Whether `name` stands alone as an identifier at `offset` of `text`."""
    if text[offset:offset + len(name)] != name:
        return False
    before = text[offset - 1] if offset > 0 else " "
    after = text[offset + len(name)] if offset + len(name) < len(text) else " "
    return not (before.isalnum() or before == "_" or after.isalnum() or after == "_")


def text_at(text: str, line: int, column: int, length: int) -> str:
    """`length` characters of `text` from (line, column); empty unless a whole identifier."""
    starts = _line_starts(text)
    if not 0 < line <= len(starts):
        return ""
    offset = starts[line - 1] + column
    found = text[offset:offset + length]
    return found if _is_identifier_at(text, offset, found) else ""
