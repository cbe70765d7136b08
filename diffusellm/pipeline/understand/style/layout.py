"""Phase 1 style profiling: indentation, quotes and line length read from the token stream."""

from __future__ import annotations

import io
import math
import tokenize
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

# Python 3.12+ splits f-strings into several tokens; 3.11 keeps them as one STRING token.
_FSTRING_START: int = getattr(tokenize, "FSTRING_START", -1)
_FSTRING_END: int = getattr(tokenize, "FSTRING_END", -1)
_STATEMENT_START = frozenset({tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT})
_SKIPPED = frozenset({tokenize.NL, tokenize.COMMENT})
_NOT_CODE = frozenset(
    {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
     tokenize.ENDMARKER}
)
# The line lengths projects configure; a measured length is rounded up to one of these.
USUAL_LINE_LENGTHS = (79, 88, 100, 120)
_SHORT = 72  # lines this short fit every usual limit, whatever they hold


@dataclass
class LayoutStats:
    """Counts gathered over the token streams of many files."""

    indent_widths: Counter[int] = field(default_factory=lambda: Counter[int]())
    tab_blocks: int = 0
    quotes: Counter[str] = field(default_factory=lambda: Counter[str]())
    line_lengths: Counter[int] = field(default_factory=lambda: Counter[int]())
    lines_scanned: int = 0

    def merge(self, other: LayoutStats) -> None:
        """Add another file's counts to these."""
        self.indent_widths.update(other.indent_widths)
        self.tab_blocks += other.tab_blocks
        self.quotes.update(other.quotes)
        self.line_lengths.update(other.line_lengths)
        self.lines_scanned += other.lines_scanned


@dataclass(frozen=True)
class _Str:
    """A string literal: its source text and where it starts and ends."""

    text: str
    start: tuple[int, int]
    end: tuple[int, int]
    statement: bool
    """Whether the string is a whole expression statement (a docstring or bare string)."""


def quote_of(literal: str) -> str | None:
    """'single' or 'double' for an ordinary one-line literal; None when the quote was forced.

    Triple-quoted strings, and strings that contain the other quote character, show no preference.
    """
    at = next((i for i, c in enumerate(literal) if c in "'\""), -1)
    if at < 0 or literal[at : at + 3] in ('"""', "'''"):
        return None
    quote = literal[at]
    body = literal[at + 1 : -1]
    other = "'" if quote == '"' else '"'
    if other in body:
        return None
    return "double" if quote == '"' else "single"


def _strings(tokens: list[tokenize.TokenInfo], lines: list[str]) -> list[_Str]:
    """String literals of a token list, f-strings reassembled on Python 3.12+."""
    significant = [t for t in tokens if t.type not in _SKIPPED]
    found: list[_Str] = []
    depth = opened = 0
    for index, tok in enumerate(significant):
        if tok.type == _FSTRING_START:
            opened = opened if depth else index
            depth += 1
        elif tok.type == _FSTRING_END:
            depth -= 1
            if not depth:
                text = _source(lines, significant[opened].start, tok.end)
                found.append(_literal(significant, opened, index, text))
        elif tok.type == tokenize.STRING and not depth:
            found.append(_literal(significant, index, index, tok.string))
    return found


def _literal(tokens: list[tokenize.TokenInfo], first: int, last: int, text: str) -> _Str:
    before = tokens[first - 1] if first else None
    after = tokens[last + 1] if last + 1 < len(tokens) else None
    statement = (before is None or before.type in _STATEMENT_START) and (
        after is None or after.type in (tokenize.NEWLINE, tokenize.ENDMARKER)
    )
    return _Str(text=text, start=tokens[first].start, end=tokens[last].end, statement=statement)


def _source(lines: list[str], start: tuple[int, int], end: tuple[int, int]) -> str:
    if start[0] == end[0]:
        return lines[start[0] - 1][start[1] : end[1]]
    middle = lines[start[0] : end[0] - 1]
    return "".join([lines[start[0] - 1][start[1] :], *middle, lines[end[0] - 1][: end[1]]])


def _indents(tokens: list[tokenize.TokenInfo], stats: LayoutStats) -> None:
    """Count the step each indented block adds to its enclosing block."""
    stack = [""]
    for tok in tokens:
        if tok.type == tokenize.INDENT:
            outer = stack[-1]
            step = tok.string[len(outer) :] if tok.string.startswith(outer) else tok.string
            if "\t" in step:
                stats.tab_blocks += 1
            elif step:
                stats.indent_widths[len(step)] += 1
            stack.append(tok.string)
        elif tok.type == tokenize.DEDENT and len(stack) > 1:
            stack.pop()


def _code_widths(tokens: list[tokenize.TokenInfo]) -> dict[int, int]:
    """Per line, where its code ends: comments and the inside of multi-line strings do not count.

    Formatters wrap code but leave comments and docstrings alone, so only code shows the limit.
    """
    widths: dict[int, int] = {}
    for tok in tokens:
        if tok.type in _NOT_CODE or tok.start[0] != tok.end[0]:
            continue
        row = tok.start[0]
        widths[row] = max(widths.get(row, 0), tok.end[1])
    return widths


def _line_lengths(
    tokens: list[tokenize.TokenInfo], lines: list[str], strings: list[_Str], stats: LayoutStats
) -> None:
    """Code widths of the lines an author could have wrapped: no URLs, noqa, long literals."""
    longest: dict[int, int] = {}
    for literal in strings:
        if literal.start[0] == literal.end[0]:
            row = literal.start[0]
            longest[row] = max(longest.get(row, 0), literal.end[1] - literal.start[1])
    for row, width in _code_widths(tokens).items():
        line = lines[row - 1] if row <= len(lines) else ""
        if "://" in line or "noqa" in line:
            continue
        if width > _SHORT and longest.get(row, 0) * 5 >= width * 2:
            continue  # a long literal that black and ruff would not split
        stats.line_lengths[width] += 1


def scan_layout(text: str) -> LayoutStats | None:
    """Indentation, quote and line-length counts of one file; None when it does not tokenize."""
    lines = text.splitlines(keepends=True)
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        return None
    stats = LayoutStats(lines_scanned=len(lines))
    _indents(tokens, stats)
    strings = _strings(tokens, lines)
    for literal in strings:
        quote = None if literal.statement else quote_of(literal.text)
        if quote is not None:
            stats.quotes[quote] += 1
    _line_lengths(tokens, lines, strings, stats)
    return stats


def indentation(stats: LayoutStats) -> tuple[Literal["space", "tab"], int]:
    """('space', width) or ('tab', 4) by majority of indented blocks; 4 spaces without evidence."""
    spaces = sum(stats.indent_widths.values())
    if stats.tab_blocks > spaces:
        return "tab", 4
    if not spaces:
        return "space", 4
    width = max(stats.indent_widths.items(), key=lambda item: (item[1], item[0] == 4))[0]
    return "space", width


def quote_style(stats: LayoutStats) -> Literal["double", "single"]:
    """'single' when most ordinary literals use single quotes, else 'double'."""
    return "single" if stats.quotes["single"] > stats.quotes["double"] else "double"


def percentile(counts: Counter[int], fraction: float) -> int:
    """The nearest-rank percentile of a histogram; 0 when it is empty."""
    total = sum(counts.values())
    if not total:
        return 0
    rank = max(1, math.ceil(fraction * total))
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if seen >= rank:
            return value
    return max(counts)


def measured_line_length(stats: LayoutStats, fraction: float = 0.995) -> int:
    """A high percentile of the real line lengths, rounded up to 79, 88, 100 or 120 (at most)."""
    longest = percentile(stats.line_lengths, fraction)
    if not longest:
        return 88
    return next((usual for usual in USUAL_LINE_LENGTHS if longest <= usual), USUAL_LINE_LENGTHS[-1])
