"""Phase 3, misspelt names: an issue that reports a typo in a name, read as the rename that fixes it.

Such issues often name nothing ("fix the typo in a function name"). The repository's own spelling
answers them: a word that occurs in one definition's name only and is one or two edits from a word
the repository uses elsewhere (in other names, tests included) is a misspelling of that word. Only
issues whose wording reports a misspelling are read this way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from diffusellm.pipeline.locate.context import Localised, Symbol, words_of
from diffusellm.pipeline.normalise.cues import IssueWords

_CUE = re.compile(r"\b(typos?|misspel\w*|mis-spel\w*|spelling|spelt|mistyped|misnamed)\b")
_OF_A_NAME = re.compile(r"\b(names?|named|functions?|methods?|class(?:es)?|identifiers?|attributes?)\b")
_OF_PROSE = re.compile(r"\b(docstrings?|comments?|docs|documentation|readme|messages?|changelog|strings?)\b")
_KIND_WORDS = {"function": ("function",), "method": ("method", "function"), "class": ("class",)}
_SUFFIXES = ("s", "es", "ed", "d", "er", "r", "ing", "ly", "al")
MIN_WORD = 4


@dataclass(frozen=True)
class Misspelling:
    """A definition whose name holds a misspelt word, and the name with it corrected."""

    symbol: Symbol
    wrong: str
    right: str
    new_name: str
    distance: int
    support: int
    """How often the repository spells the word right."""
    swapped: bool
    """The same letters in another order: the commonest slip, and never two real words of the
    project (which a changed or missing letter often is: fill and file)."""

    @property
    def rank(self) -> tuple[bool, int, int]:
        """Likeliest first: swapped letters, then fewer edits, then the better-attested spelling."""
        return (not self.swapped, self.distance, -self.support)


def reports_typo(words: IssueWords) -> bool:
    """The issue's wording reports a misspelling."""
    return bool(_CUE.search(words.lower))


def edit_distance(a: str, b: str, limit: int = 3) -> int:
    """Edits (insert, delete, substitute, swap two neighbours) from `a` to `b`; `limit` if more."""
    if abs(len(a) - len(b)) >= limit:
        return limit
    before: list[int] = []
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, start=1):
            current[j] = min(row[j] + 1, current[j - 1] + 1, row[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], before[j - 2] + 1)
        before, row = row, current
        if min(row) >= limit:
            return limit
    return min(row[-1], limit)


def _inflection(a: str, b: str) -> bool:
    """One word is the other with a common ending: a different form, not a misspelling."""
    short, long = sorted((a, b), key=len)
    return any(long == short + s or long == short[:-1] + s for s in _SUFFIXES)


def _correction(word: str, counts: Mapping[str, int]) -> tuple[str, int, bool] | None:
    """The repository's likeliest right spelling of a word it spells so at most twice, if any:
    (the word, edits, whether the letters are the same ones in another order)."""
    seen = counts.get(word, 0)
    if len(word) < MIN_WORD or seen > 2:  # its own name, and perhaps a test named after it
        return None
    allowed = 1 if len(word) < 7 else 2
    found: list[tuple[bool, int, int, str]] = []
    for other, n in counts.items():
        if other == word or n < seen or len(other) < MIN_WORD or _inflection(word, other):
            continue
        distance = edit_distance(word, other)
        if distance <= allowed:
            found.append((sorted(word) != sorted(other), distance, -n, other))
    if not found:
        return None
    shuffled, distance, _, other = min(found)
    return other, distance, not shuffled


def _respell(name: str, wrong: str, right: str) -> str:
    """`name` with the word `wrong` replaced by `right`, keeping its case."""
    def swap(match: re.Match[str]) -> str:
        text = match.group(0)
        if text.isupper():
            return right.upper()
        return right.capitalize() if text[0].isupper() else right
    return re.sub(re.escape(wrong), swap, name, count=1, flags=re.IGNORECASE)


def misspellings(symbols: Sequence[Symbol], counts: Mapping[str, int]) -> list[Misspelling]:
    """Definitions whose names hold a word the repository spells otherwise elsewhere, best first."""
    found: list[Misspelling] = []
    for symbol in symbols:
        if symbol.kind not in _KIND_WORDS or symbol.name.startswith("__"):
            continue
        for word in words_of(symbol.name):
            fixed = _correction(word, counts)
            if fixed is not None:
                right, distance, swapped = fixed
                found.append(Misspelling(symbol, word, right, _respell(symbol.name, word, right),
                                         distance, counts.get(right, 0), swapped))
    return sorted(found, key=lambda m: m.rank)


def typo_candidates(words: IssueWords, loc: Localised) -> list[Misspelling]:
    """The renames that would fix the misspelling an issue reports: those among the code it names
    when it names any, else the swapped-letter ones among every candidate of the kind it mentions
    (function, class); a changed or missing letter alone is too often two real words."""
    if not reports_typo(words):
        return []
    found = misspellings(loc.symbols, loc.words)
    named = [m for m in found if m.symbol.name in words.identifiers or m.symbol.qualname in words.identifiers]
    if named:
        return named
    if not _OF_A_NAME.search(words.lower) or _OF_PROSE.search(words.lower):
        return []  # a typo in a docstring, a message or the README is not a misspelt name
    kinds = [k for k, said in _KIND_WORDS.items() if any(re.search(rf"\b{w}", words.lower) for w in said)]
    return [m for m in found if m.swapped and (not kinds or m.symbol.kind in kinds)]
