"""Structured output: regexes that only admit new names in a repository's naming convention.

Every match of `naming_pattern(convention)` is a Python identifier that is not a keyword and that
`diffusellm.pipeline.understand.style.infer.conforms(name, convention)` accepts, and its length is bounded, so a grammar
built from it cannot loop.
"""

from __future__ import annotations

import keyword
import string
from dataclasses import dataclass

from diffusellm.pipeline.understand.style.profile import NamingConvention

_LOWER = frozenset(string.ascii_lowercase)
_UPPER = frozenset(string.ascii_uppercase)
_DIGITS = frozenset(string.digits)
_UNDERSCORE = frozenset("_")


@dataclass(frozen=True)
class _Shape:
    """Allowed characters by position: first, second, and every later one."""

    first: frozenset[str]
    second: frozenset[str]
    rest: frozenset[str]

    def at(self, index: int) -> frozenset[str]:
        """The characters allowed at `index`."""
        return self.first if index == 0 else self.second if index == 1 else self.rest


_SHAPES: dict[NamingConvention, _Shape] = {
    "snake_case": _Shape(_LOWER, _LOWER | _DIGITS | _UNDERSCORE, _LOWER | _DIGITS | _UNDERSCORE),
    "lowercase": _Shape(_LOWER, _LOWER | _DIGITS, _LOWER | _DIGITS),
    "camelCase": _Shape(_LOWER, _LOWER | _UPPER | _DIGITS, _LOWER | _UPPER | _DIGITS),
    # A PascalCase name needs a lower-case letter (`AB` reads as UPPER_CASE): demand it second.
    "PascalCase": _Shape(_UPPER, _LOWER, _LOWER | _UPPER | _DIGITS),
    "UPPER_CASE": _Shape(_UPPER, _UPPER | _DIGITS | _UNDERSCORE, _UPPER | _DIGITS | _UNDERSCORE),
    "mixed": _Shape(
        _LOWER | _UPPER | _UNDERSCORE,
        _LOWER | _UPPER | _DIGITS | _UNDERSCORE,
        _LOWER | _UPPER | _DIGITS | _UNDERSCORE,
    ),
}


def char_class(chars: frozenset[str]) -> str:
    """A regex character class for `chars` (letters, digits, `_`), with ranges where possible."""
    if len(chars) == 1:
        return _escape(next(iter(chars)))
    ordered = sorted(chars)
    parts: list[str] = []
    start = prev = ordered[0]
    for char in [*ordered[1:], ""]:
        if char and ord(char) == ord(prev) + 1:
            prev = char
            continue
        parts.append(_escape(start) if start == prev else f"{_escape(start)}-{_escape(prev)}")
        if char:
            start = prev = char
    return "[" + "".join(parts) + "]"


def _escape(char: str) -> str:
    return "\\" + char if char in "\\]^-[" else char


def _repeat(chars: frozenset[str], upto: int) -> str:
    """`chars` repeated 0..upto times ("" when upto is 0)."""
    return f"{char_class(chars)}{{0,{upto}}}" if upto > 0 else ""


def _avoiding(shape: _Shape, words: frozenset[str], prefix: str, limit: int) -> list[str]:
    """Alternatives for the rest of a name that starts with `prefix` and is not one of `words`."""
    depth = len(prefix)
    options = [""] if depth and prefix not in words else []
    if depth >= limit:
        return options
    allowed = shape.at(depth)
    children = sorted(
        {w[depth] for w in words if w.startswith(prefix) and len(w) > depth} & allowed
    )
    others = allowed - set(children)
    for char in children:
        tail = _avoiding(shape, words, prefix + char, limit)
        if tail:
            options.append(_escape(char) + _group(tail))
    if others:
        tail = _tail_after(shape, depth + 1, limit)
        options.append(char_class(others) + tail)
    return options


def _tail_after(shape: _Shape, index: int, limit: int) -> str:
    """Any allowed continuation from position `index` up to `limit` characters in all."""
    if index >= limit:
        return ""
    if index == 1:
        rest = _repeat(shape.rest, limit - 2)
        return f"({char_class(shape.second)}{rest})?"
    return _repeat(shape.rest, limit - index)


def _group(options: list[str]) -> str:
    nonempty = [o for o in options if o]
    if not nonempty:
        return ""
    body = "(" + "|".join(nonempty) + ")"
    return body + "?" if "" in options else body


def naming_pattern(convention: NamingConvention, max_length: int = 64) -> str:
    """An anchored regex for new names written in `convention`, at most `max_length` characters.

    One or two leading underscores (private names) are allowed; keywords are never matched.
    """
    if max_length < 4:
        raise ValueError(f"max_length must be at least 4, got {max_length}")
    shape = _SHAPES[convention]
    words = frozenset(keyword.kwlist)
    plain = _group(_avoiding(shape, words, "", max_length))
    body = char_class(shape.first) + _tail_after(shape, 1, max_length - 2)
    return f"^({plain}|_{{1,2}}{body})$"
