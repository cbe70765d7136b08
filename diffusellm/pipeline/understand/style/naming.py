"""Phase 1 style profiling: classify, check and convert identifier naming conventions."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from diffusellm.pipeline.understand.style.profile import IdentifierKind, NamingConvention

# A word of an identifier: an acronym (HTTP in HTTPServer), a capitalised or lower word, digits.
_WORD = re.compile(r"[A-Z]+[0-9]*(?![a-z])|[A-Z]?[a-z]+[0-9]*|[0-9]+")

# What PEP 8 asks for, used when a repository gives no evidence either way.
DEFAULT_NAMING: dict[IdentifierKind, NamingConvention] = {
    "module": "snake_case",
    "class": "PascalCase",
    "function": "snake_case",
    "method": "snake_case",
    "constant": "UPPER_CASE",
    "variable": "snake_case",
    "parameter": "snake_case",
}

# Conventions a name can show; `lowercase` and `mixed` names carry no evidence for a kind.
_EVIDENCE: frozenset[NamingConvention] = frozenset(
    {"snake_case", "PascalCase", "camelCase", "UPPER_CASE"}
)


@dataclass(frozen=True)
class Identifier:
    """One named definition found in the code, with the convention its name follows."""

    kind: IdentifierKind
    name: str
    file: str
    line: int
    convention: NamingConvention
    """For test functions, the convention of the name after its `test_` prefix."""


@dataclass(frozen=True)
class KindSummary:
    """The dominant convention of one identifier kind and how well the repository follows it."""

    kind: IdentifierKind
    convention: NamingConvention
    share: float
    """Fraction of this kind's identifiers that conform to `convention`."""
    count: int


def is_dunder(name: str) -> bool:
    """Whether a name is a Python special name (`__init__`, `__all__`)."""
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def _core(name: str) -> tuple[str, str, str]:
    """Split a name into leading underscores, the core, and trailing underscores."""
    stripped = name.strip("_")
    if not stripped:
        return name, "", ""
    lead = len(name) - len(name.lstrip("_"))
    trail = len(name) - len(name.rstrip("_"))
    return name[:lead], stripped, name[len(name) - trail :]


def convention_of(name: str) -> NamingConvention:
    """Classify one identifier; leading and trailing underscores are ignored.

    A single lower-case word is `lowercase` (it fits snake_case and camelCase alike);
    a name that mixes styles, such as `visit_ClassDef`, is `mixed`.
    """
    core = name.strip("_")
    has_upper = core != core.lower()
    has_lower = core != core.upper()
    if not (has_upper or has_lower):
        return "mixed"  # no cased letter at all: `_`, `__`, `_1`
    if "_" in core:
        if not has_upper:
            return "snake_case"
        return "UPPER_CASE" if not has_lower else "mixed"
    if not has_upper:
        return "lowercase"
    if not has_lower:
        return "UPPER_CASE"
    return "PascalCase" if core[0].isupper() else "camelCase"


def _fits(actual: NamingConvention, wanted: NamingConvention) -> bool:
    """Whether a name classified `actual` may stand in a codebase that writes `wanted`."""
    if wanted in ("mixed", actual):
        return True
    return actual == "lowercase" and wanted in ("snake_case", "camelCase")


def conforms(name: str, convention: NamingConvention) -> bool:
    """Whether `name` may be written in `convention`; a one-word lower name fits snake and camel."""
    if is_dunder(name) or _fits(convention_of(name), convention):
        return True
    core = _core(name)[1]
    # One capital letter (a type variable `T`) is both UPPER_CASE and PascalCase.
    return convention == "PascalCase" and len(core) == 1 and core.isupper()


def split_words(name: str) -> list[str]:
    """The words of an identifier: `getHTTPResponse` → get, HTTP, Response."""
    words: list[str] = []
    for part in name.split("_"):
        words.extend(_WORD.findall(part))
    return words


def convert_name(name: str, convention: NamingConvention) -> str:
    """Rewrite `name` in `convention`, keeping leading/trailing underscores and special names."""
    if convention == "mixed" or is_dunder(name):
        return name
    lead, core, trail = _core(name)
    words = split_words(core)
    if not words:
        return name
    if convention == "snake_case":
        body = "_".join(w.lower() for w in words)
    elif convention == "UPPER_CASE":
        body = "_".join(w.upper() for w in words)
    elif convention == "lowercase":
        body = "".join(w.lower() for w in words)
    elif convention == "PascalCase":
        body = "".join(w[:1].upper() + w[1:].lower() for w in words)
    else:
        body = words[0].lower() + "".join(w[:1].upper() + w[1:].lower() for w in words[1:])
    return f"{lead}{body}{trail}"


def dominant(kind: IdentifierKind, identifiers: Iterable[Identifier]) -> NamingConvention:
    """The strict majority convention among the names of `kind` that show one.

    Kinds without evidence get the PEP 8 default; a kind split without a majority is `mixed`.
    """
    votes = Counter[NamingConvention](
        i.convention for i in identifiers if i.kind == kind and i.convention in _EVIDENCE
    )
    default = DEFAULT_NAMING[kind]
    if not votes:
        return default
    top, top_count = max(votes.items(), key=lambda item: (item[1], item[0] == default))
    return top if top_count * 2 > sum(votes.values()) else "mixed"


def summarize(
    kind: IdentifierKind,
    identifiers: Iterable[Identifier],
    convention: NamingConvention | None = None,
) -> KindSummary:
    """How the names of `kind` follow `convention` (by default the dominant one)."""
    names = [i for i in identifiers if i.kind == kind]
    convention = convention or dominant(kind, names)
    fitting = sum(1 for i in names if _fits(i.convention, convention))
    share = fitting / len(names) if names else 1.0
    return KindSummary(kind=kind, convention=convention, share=round(share, 4), count=len(names))


def summarize_all(identifiers: list[Identifier]) -> dict[IdentifierKind, KindSummary]:
    """A summary for every identifier kind, in the order of `DEFAULT_NAMING`."""
    return {kind: summarize(kind, identifiers) for kind in DEFAULT_NAMING}
