"""Localisation, literal signal: quoted messages and `--flags` in an issue matched to string literals."""

from __future__ import annotations

import re
from collections.abc import Sequence

from diffusellm.pipeline.locate.chunks import Chunk

_QUOTED = re.compile(r'"([^"\n]{6,300})"|(?<!\w)\'([^\'\n]{6,300})\'(?!\w)|`([^`\n]{6,300})`')
_MESSAGE = re.compile(r"\b\w*(?:Error|Exception|Warning)\b: +([^\n]{6,300})")
_FLAG = re.compile(r"(?<![\w-])(--[A-Za-z][\w-]*[A-Za-z0-9])")
_PLACEHOLDER = re.compile(r"%\([^)]*\)[-#0 +]*\d*(?:\.\d+)?[a-zA-Z]|%[-#0 +]*\d*(?:\.\d+)?[a-zA-Z%]"
                          r"|\{[^{}]*\}")
MIN_PIECE = 12
"""A literal's fixed text (between format placeholders) must be this long to be looked for in the
issue: shorter pieces ('name', 'value') would match almost anything."""


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def issue_phrases(text: str) -> tuple[list[str], list[str]]:
    """Quoted strings and error messages (lower-cased, spaces collapsed), and `--flags`. A quoted
    single short word ('SPRING') is a value, not a message: it is left out."""
    phrases: dict[str, None] = {}
    for m in _QUOTED.finditer(text):
        phrases[_norm(next(g for g in m.groups() if g))] = None
    for m in _MESSAGE.finditer(text):
        phrases[_norm(m[1])] = None
    flags = list(dict.fromkeys(m[1] for m in _FLAG.finditer(text)))
    return [p for p in phrases if len(p) >= MIN_PIECE or (len(p) >= 6 and " " in p)], flags


def pieces(literal: str) -> list[str]:
    """The fixed parts of a (format) string literal, lower-cased."""
    return [p for p in (_norm(s) for s in _PLACEHOLDER.split(literal)) if len(p) >= MIN_PIECE]


def literal_score(chunk: Chunk, phrases: Sequence[str], flags: Sequence[str], issue: str) -> int:
    """How much of the issue's quoted text the chunk's literals hold exactly: the longest match
    (a quoted phrase inside a literal, a literal's fixed text inside the issue, or a flag)."""
    best = 0
    for literal in chunk.literals:
        low = _norm(literal)
        for phrase in phrases:
            if phrase in low or (len(low) >= MIN_PIECE and low in phrase):
                best = max(best, min(len(phrase), len(low)))
        for flag in flags:
            if flag in literal:
                best = max(best, len(flag) + 8)
        for piece in pieces(literal):
            if piece in issue:
                best = max(best, len(piece))
    return best


def literal_ranking(chunks: Sequence[Chunk], allowed: Sequence[int], text: str,
                    limit: int) -> list[int]:
    """Allowed chunk positions whose string literals match the issue's quoted text, best first."""
    phrases, flags = issue_phrases(text)
    issue = _norm(text)
    scored = [(literal_score(chunks[i], phrases, flags, issue), i) for i in allowed]
    scored = [(s, i) for s, i in scored if s > 0]
    scored.sort(key=lambda si: -si[0])
    return [i for _, i in scored[:limit]]
