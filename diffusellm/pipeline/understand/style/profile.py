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
ChangelogFormat = Literal["keepachangelog", "towncrier", "scriv", "pallets", "sections", "none"]
"""`pallets`: "Version X" headings with an "Unreleased" / "Released DATE" line under each;
`sections`: version sections newest first ("dev", "Unreleased" or a version on top) in a
HISTORY / CHANGES / NEWS / docs file; `scriv`: fragments that scriv collects."""


class ChangelogInfo(BaseModel):
    """Where and how the repository records changes, and what that was read from."""

    model_config = ConfigDict(extra="forbid")

    format: ChangelogFormat = "none"
    path: str | None = None
    """The file an entry goes into; the fragment directory for towncrier and scriv."""
    fragment_types: list[str] = []
    """Towncrier fragment types (feature, bugfix, ...), in the repository's order."""
    unreleased_heading: str | None = None
    """The exact heading line of the Unreleased section, when there is one."""
    new_section: str | None = None
    """How the history titles a section not yet released, `{version}` marking the version (for
    example `{version} (UNRELEASED)`); None: "Unreleased" (Pallets: `Version {version}`)."""
    bullet: str = "- "
    """What goes before an entry's text: the list marker and its spacing (`- `, `* `, `-   `)."""
    reference: str | None = None
    """How entries cite an issue, `{n}` marking the number (`:issue:`{n}``, `(#{n})`, ...);
    None when entries cite none, or only pull requests (whose number is not known yet)."""
    evidence: list[str] = []
    """What the format was read from: config keys, files, headings, history."""


class ImportStyle(BaseModel):
    """How modules import."""

    model_config = ConfigDict(extra="forbid")

    sorted: bool = True
    """Whether imports follow isort/ruff ordering (stdlib, third party, first party)."""
    relative: bool = False
    """Whether the package imports its own modules relatively."""
    future_annotations: bool = False
    """Whether most modules start with `from __future__ import annotations`."""


class GuidanceFact(BaseModel):
    """A fact a machine can use, read from an instruction file, and the line it came from."""

    model_config = ConfigDict(extra="forbid")

    value: str
    source: str
    """For example `AGENTS.md line 12`."""


class GuidanceFile(BaseModel):
    """One instruction file, as prompts may show it."""

    model_config = ConfigDict(extra="forbid")

    path: str
    includes: list[str] = []
    """Files its `@path` lines import (read with it)."""
    scope: str = "."
    """The folder an AGENTS.md applies to; "." for the whole repository."""
    text: str = ""
    """Bounded, with comments and lines about permissions, secrets or the network removed."""
    dropped_lines: int = 0


class RepoGuidance(BaseModel):
    """What the repository tells contributors and coding agents."""

    model_config = ConfigDict(extra="forbid")

    files: list[GuidanceFile] = []
    test_command: GuidanceFact | None = None
    lint_command: GuidanceFact | None = None
    protected_paths: list[GuidanceFact] = []
    """Globs an instruction file says not to edit."""


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
    sources: dict[str, str] = {}
    """Where each declared fact came from (`indent`, `quote_style`, `line_length`), for example
    `.pre-commit-config.yaml black hook`; a fact not named here was measured from the code."""
    docstring_style: DocstringStyle = "plain"
    naming: dict[IdentifierKind, NamingConvention] = {}
    imports: ImportStyle = ImportStyle()
    commit_convention: CommitConvention = "imperative"
    commit_examples: list[str] = []
    changelog: ChangelogInfo = ChangelogInfo()
    guidance: RepoGuidance = RepoGuidance()
    test_command: GuidanceFact | None = None
    """How the maintainers run the tests: the instruction files' command, else tox.ini's, else
    `pytest` when pytest is configured."""
    files_profiled: int = 0
