"""Phase 1 style profiling: infer a repository's `StyleProfile`; write ruff.toml and naming db."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from diffusellm.errors import RepositoryError
from diffusellm.pipeline.paths import UnsafePathError, decode_source, read_file
from diffusellm.pipeline.project import list_python_files
from diffusellm.pipeline.understand.style.artifacts import ruff_toml, write_naming_db
from diffusellm.pipeline.understand.style.changelog import changelog_info
from diffusellm.pipeline.understand.style.code import docstring_style, first_party_names, import_style
from diffusellm.pipeline.understand.style.declared import Declared, declared_style
from diffusellm.pipeline.understand.style.guidance import declared_test_command, read_guidance
from diffusellm.pipeline.understand.style.history import commit_convention, recent_subjects
from diffusellm.pipeline.understand.style.layout import (
    LayoutStats,
    indentation,
    measured_line_length,
    quote_style,
    scan_layout,
)
from diffusellm.pipeline.understand.style.naming import (
    DEFAULT_NAMING,
    Identifier,
    KindSummary,
    conforms,
    convention_of,
    convert_name,
    summarize,
    summarize_all,
)
from diffusellm.pipeline.understand.style.parse import ParsedFile, make_parser, parse_file
from diffusellm.pipeline.understand.style.profile import IdentifierKind, StyleProfile

__all__ = ["conforms", "convention_of", "convert_name", "profile_style", "write_style_artifacts"]

# Tokenizing is the slow part; past this many lines the counts no longer move, so files are sampled.
_LINE_BUDGET = 40_000
_MAX_FILE_BYTES = 1_000_000  # bigger Python files are generated tables, not anyone's style
_VENDORED = frozenset({"_vendor", "vendor", "vendored", "third_party", "thirdparty"})
_MEASURED = "measured from the code (99.5th percentile of line lengths, rounded up)"


def _root(repo: Path) -> Path:
    root = repo.expanduser().resolve()
    if not root.is_dir():
        raise RepositoryError(
            f"cannot profile the style of {repo}: it is not a directory",
            hint="pass the path of a repository checkout",
        )
    return root


def _own_code(rel: str) -> bool:
    """Whether a discovered file is the authors' code (not vendored or generated)."""
    path = PurePosixPath(rel)
    generated = path.stem.endswith(("_pb2", "_pb2_grpc"))
    return not generated and not _VENDORED.intersection(path.parts[:-1])


def _files(root: Path, files: Sequence[str] | None) -> list[str]:
    if files is None:
        return [rel for rel in list_python_files(root) if _own_code(rel)]
    chosen: list[str] = []
    for name in files:
        path = Path(name)
        if path.is_absolute():
            if not path.is_relative_to(root):
                continue
            path = path.relative_to(root)
        chosen.append(path.as_posix())
    return chosen


def _parse_all(root: Path, rels: Sequence[str]) -> list[ParsedFile]:
    """Parse every readable UTF-8 file; undecodable, huge and broken files are skipped."""
    parser = make_parser()
    parsed: list[ParsedFile] = []
    for rel in rels:
        try:
            text = decode_source(read_file(root, rel, limit=_MAX_FILE_BYTES)).removeprefix("\ufeff")
        except (OSError, UnicodeError, UnsafePathError):
            continue
        result = parse_file(parser, rel, text)
        if result is not None:
            parsed.append(result)
    return parsed


def _layout(parsed: Sequence[ParsedFile]) -> LayoutStats:
    """Token-level counts over the files, sampled evenly once the line budget is exceeded."""
    total = sum(p.text.count("\n") for p in parsed)
    step = max(1, math.ceil(total / _LINE_BUDGET))
    stats = LayoutStats()
    for p in parsed[::step]:
        one = scan_layout(p.text)
        if one is not None:
            stats.merge(one)
    return stats


def profile_style(repo: Path, files: Sequence[str] | None = None) -> StyleProfile:
    """Infer how the authors of `repo` write code, commit and keep a changelog.

    `files` are repository-relative Python paths; None profiles every tracked Python file.
    """
    root = _root(repo)
    rels = _files(root, files)
    parsed = _parse_all(root, rels)
    layout = _layout(parsed)
    declared = declared_style(root)
    indent_char, indent_width = declared.indent.value if declared.indent else indentation(layout)
    length = declared.line_length
    identifiers = [i for p in parsed for i in p.identifiers]
    convention, examples = commit_convention(recent_subjects(root))
    guidance = read_guidance(root)
    return StyleProfile(
        indent="tabs" if indent_char == "tab" else f"{indent_width} spaces",
        indent_width=indent_width,
        indent_char=indent_char,
        quote_style=declared.quote.value if declared.quote else quote_style(layout),
        line_length=length.value if length else measured_line_length(layout),
        line_length_source=length.source if length else "measured",
        sources=_sources(declared),
        docstring_style=docstring_style(parsed),
        naming={kind: s.convention for kind, s in summarize_all(identifiers).items()},
        imports=import_style(parsed, first_party_names(root, rels)),
        commit_convention=convention,
        commit_examples=examples,
        changelog=changelog_info(root),
        guidance=guidance,
        test_command=declared_test_command(root, guidance),
        files_profiled=len(parsed),
    )


def _sources(declared: Declared) -> dict[str, str]:
    """Where each declared fact came from; facts not named were measured from the code."""
    facts = {"indent": declared.indent, "quote_style": declared.quote, "line_length": declared.line_length}
    return {name: fact.source for name, fact in facts.items() if fact is not None}


def _line_source(root: Path, profile: StyleProfile) -> str:
    declared = declared_style(root).line_length
    if declared is not None and declared.value == profile.line_length:
        return f"from {declared.source}"
    return _MEASURED


def write_style_artifacts(
    profile: StyleProfile, repo: Path, out_dir: Path, files: Sequence[str] | None = None
) -> dict[str, Path]:
    """Write `ruff.toml` and `naming_conventions.db` for `profile` into `out_dir`.

    Returns {"ruff_config": path, "naming_db": path}.
    """
    root = _root(repo)
    rels = _files(root, files)
    identifiers: list[Identifier] = [i for p in _parse_all(root, rels) for i in p.identifiers]
    summaries: dict[IdentifierKind, KindSummary] = {
        kind: summarize(kind, identifiers, profile.naming.get(kind))
        for kind in DEFAULT_NAMING
    }
    line_source = _line_source(root, profile)
    meta = {"line_length_source": line_source, "profile": profile.model_dump_json()}
    ruff_path, db_path = out_dir / "ruff.toml", out_dir / "naming_conventions.db"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        first_party = sorted(first_party_names(root, rels))
        ruff_path.write_text(
            ruff_toml(profile, line_source=line_source, first_party=first_party), encoding="utf-8"
        )
        write_naming_db(db_path, identifiers, summaries, meta)
    except (OSError, sqlite3.Error) as exc:
        raise RepositoryError(
            f"cannot write the style artifacts to {out_dir}: {exc}",
            hint="check that the state folder exists and is writable",
        ) from exc
    return {"ruff_config": ruff_path, "naming_db": db_path}
