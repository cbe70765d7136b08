"""Phase 1 data: the `StyleProfile` a repository's code and history imply, shared by every later stage."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

IdentifierKind = Literal[
    "module", "class", "function", "method", "constant", "variable", "parameter"
]
NamingConvention = Literal[
    "snake_case", "PascalCase", "camelCase", "UPPER_CASE", "lowercase", "mixed"
]
DocstringStyle = Literal["google", "numpy", "rest", "plain", "none"]
CommitConvention = Literal["conventional", "gitmoji", "bracketed", "imperative", "none"]
ChangelogFormat = Literal["keepachangelog", "towncrier", "none"]


class ChangelogInfo(BaseModel):
    """Where and how the repository records changes."""

    model_config = ConfigDict(extra="forbid")

    format: ChangelogFormat = "none"
    path: str | None = None
    """`CHANGELOG.md` for keepachangelog; the fragment directory for towncrier."""
    fragment_types: list[str] = []
    """Towncrier fragment types (feature, bugfix, ...), in the repository's order."""
    unreleased_heading: str | None = None
    """The exact heading line of the Unreleased section, when there is one."""


class ImportStyle(BaseModel):
    """How modules import."""

    model_config = ConfigDict(extra="forbid")

    sorted: bool = True
    """Whether imports follow isort/ruff ordering (stdlib, third party, first party)."""
    relative: bool = False
    """Whether the package imports its own modules relatively."""
    future_annotations: bool = False
    """Whether most modules start with `from __future__ import annotations`."""


class StyleProfile(BaseModel):
    """The style a repository's authors write in, inferred from its code and git history."""

    model_config = ConfigDict(extra="forbid")

    indent: str = "4 spaces"
    """Human-readable: "4 spaces", "2 spaces" or "tabs"."""
    indent_width: int = 4
    indent_char: Literal["space", "tab"] = "space"
    quote_style: Literal["double", "single"] = "double"
    line_length: int = 88
    line_length_source: str = "measured"
    """Where the line length came from: "measured" (a high percentile of real lines) or the config key."""
    docstring_style: DocstringStyle = "plain"
    naming: dict[IdentifierKind, NamingConvention] = {}
    imports: ImportStyle = ImportStyle()
    commit_convention: CommitConvention = "imperative"
    commit_examples: list[str] = []
    changelog: ChangelogInfo = ChangelogInfo()
    files_profiled: int = 0
