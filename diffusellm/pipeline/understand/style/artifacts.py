"""Phase 1 style profiling: render the profile as ruff settings and a SQLite naming database."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path

from diffusellm.pipeline.understand.style.naming import Identifier, KindSummary
from diffusellm.pipeline.understand.style.profile import IdentifierKind, StyleProfile

_PYDOCSTYLE = {"google": "google", "numpy": "numpy"}
_SCHEMA = """
CREATE TABLE identifiers (
    kind TEXT NOT NULL, name TEXT NOT NULL, file TEXT NOT NULL, line INTEGER NOT NULL,
    convention TEXT NOT NULL
);
CREATE INDEX identifiers_kind ON identifiers (kind, convention);
CREATE TABLE conventions (
    kind TEXT PRIMARY KEY, convention TEXT NOT NULL, share REAL NOT NULL, count INTEGER NOT NULL
);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _toml_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def _toml_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(_toml_string(v) for v in values) + "]"


def ruff_toml(profile: StyleProfile, *, line_source: str, first_party: Sequence[str]) -> str:
    """A ruff.toml with which `ruff format` and `ruff check` write and accept the repo's style."""
    lines = [
        "# Style settings diffusellm inferred for this repository (phase 1, style profiling).",
        f"# line-length: {line_source}",
        f"line-length = {profile.line_length}",
        f"indent-width = {profile.indent_width}",
        "",
        "[format]",
        f"quote-style = {_toml_string(profile.quote_style)}",
        f"indent-style = {_toml_string(profile.indent_char)}",
    ]
    convention = _PYDOCSTYLE.get(profile.docstring_style)
    if convention is not None:
        lines += ["", "[lint.pydocstyle]", f"convention = {_toml_string(convention)}"]
    if profile.imports.sorted:
        lines += ["", "[lint.isort]", f"known-first-party = {_toml_list(first_party)}"]
        if profile.imports.future_annotations:
            lines.append('required-imports = ["from __future__ import annotations"]')
    return "\n".join(lines) + "\n"


def write_naming_db(
    path: Path,
    identifiers: Sequence[Identifier],
    summaries: Mapping[IdentifierKind, KindSummary],
    meta: Mapping[str, str],
) -> None:
    """Write `naming_conventions.db` afresh: every identifier, the summary per kind, provenance."""
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    with contextlib.closing(sqlite3.connect(partial)) as db:
        db.executescript(_SCHEMA)
        db.executemany(
            "INSERT INTO identifiers (kind, name, file, line, convention) VALUES (?, ?, ?, ?, ?)",
            [(i.kind, i.name, i.file, i.line, i.convention) for i in identifiers],
        )
        db.executemany(
            "INSERT INTO conventions (kind, convention, share, count) VALUES (?, ?, ?, ?)",
            [(s.kind, s.convention, s.share, s.count) for s in summaries.values()],
        )
        db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", list(meta.items()))
        db.commit()
    os.replace(partial, path)
