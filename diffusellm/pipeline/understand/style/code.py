"""Phase 1 style profiling: docstring style and import habits, from the parsed files."""

from __future__ import annotations

import inspect
import re
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from diffusellm.pipeline.understand.style.parse import ImportRecord, ParsedFile, is_test_path
from diffusellm.pipeline.understand.style.profile import DocstringStyle, ImportStyle

_NUMPY = re.compile(
    r"^(Parameters|Other Parameters|Returns|Yields|Receives|Raises|Warns|Attributes|Methods"
    r"|Examples|Notes|See Also|References)[ \t]*\n-{3,}[ \t]*$",
    re.MULTILINE,
)
_GOOGLE = re.compile(
    r"^(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|Returns|Return|Yields"
    r"|Yield|Raises|Attributes|Examples?|Notes?|Todo|Warns|Warnings?|See Also|References):"
    r"[ \t]*\n[ \t]+\S",
    re.MULTILINE,
)
_REST = re.compile(
    r"^[ \t]*:(param|parameter|arg|argument|key|keyword|type|raises?|except|exception"
    r"|returns?|rtype|yields?|ytype)\b[^:\n]*:",
    re.MULTILINE,
)
_NOT_MODULES = frozenset({"setup", "conftest", "noxfile", "fabfile", "manage"})
_FUTURE, _STDLIB, _THIRD_PARTY, _FIRST_PARTY, _LOCAL = range(5)
_SORTED_SHARE = 0.8  # isort-clean repositories have all files sorted; allow a few strays
_SECTIONED_SHARE = 0.02  # a handful of sectioned docstrings among hundreds is noise
_DOCSTRING_COVERAGE = 0.05  # fewer docstrings than this per definition means "none"


def docstring_kind(docstring: str) -> DocstringStyle:
    """Classify one docstring: numpy, google, rest (Sphinx fields) or plain (no sections)."""
    text = inspect.cleandoc(docstring)
    if _NUMPY.search(text):
        return "numpy"
    if _GOOGLE.search(text):
        return "google"
    if _REST.search(text):
        return "rest"
    return "plain"


def docstring_style(parsed: Sequence[ParsedFile]) -> DocstringStyle:
    """The style of the repository's sectioned docstrings, `plain` when none has sections.

    `none` when (almost) nothing carries a docstring.
    """
    docstrings = [d for p in parsed for d in p.docstrings]
    definitions = sum(p.definitions for p in parsed)
    if not docstrings or len(docstrings) < _DOCSTRING_COVERAGE * definitions:
        return "none"
    votes = Counter[DocstringStyle](docstring_kind(d) for d in docstrings)
    del votes["plain"]
    if votes:
        style, count = votes.most_common(1)[0]
        if count >= _SECTIONED_SHARE * len(docstrings):
            return style
    return "plain"


def first_party_names(root: Path, files: Sequence[str]) -> set[str]:
    """Top-level packages and modules of the repository itself (root or `src/` layout)."""
    names: set[str] = set()
    for rel in files:
        parts = list(PurePosixPath(rel).parts)
        base = root
        if len(parts) > 2 and parts[0] == "src":
            parts, base = parts[1:], root / "src"
        if len(parts) == 1:
            stem = PurePosixPath(parts[0]).stem
            if stem not in _NOT_MODULES and stem.isidentifier():
                names.add(stem)
        elif parts[0].isidentifier() and (base / parts[0] / "__init__.py").is_file():
            names.add(parts[0])
    return names


def _group(record: ImportRecord, first_party: set[str]) -> int:
    if record.level:
        return _LOCAL
    top = record.module.split(".")[0]
    if top == "__future__":
        return _FUTURE
    if top in sys.stdlib_module_names:
        return _STDLIB
    return _FIRST_PARTY if top in first_party else _THIRD_PARTY


def imports_sorted(records: Sequence[ImportRecord], first_party: set[str]) -> bool:
    """Whether an import block follows isort/ruff order: sections in order, modules sorted in each.

    Both isort layouts pass: `import x` lines before `from x import` lines, or all by module name.
    """
    groups = [_group(r, first_party) for r in records]
    if groups != sorted(groups):
        return False
    for group in (_STDLIB, _THIRD_PARTY, _FIRST_PARTY):
        section = [r for r, g in zip(records, groups, strict=True) if g == group]
        by_kind = [(r.is_from, r.module.lower()) for r in section]
        by_name = [r.module.lower() for r in section]
        if by_kind != sorted(by_kind) and by_name != sorted(by_name):
            return False
    return True


def import_style(parsed: Sequence[ParsedFile], first_party: set[str]) -> ImportStyle:
    """Sorted or not, relative or absolute imports of the own package, future annotations share."""
    blocks = [p.leading_imports for p in parsed if len(p.leading_imports) >= 2]
    sorted_share = (
        sum(imports_sorted(b, first_party) for b in blocks) / len(blocks) if blocks else 1.0
    )
    relative = absolute = 0
    for p in parsed:
        if is_test_path(p.rel):
            continue
        relative += sum(1 for r in p.imports if r.level)
        absolute += sum(
            1 for r in p.imports if not r.level and r.module.split(".")[0] in first_party
        )
    modules = [p for p in parsed if any(
        i.kind in ("class", "function", "method") for i in p.identifiers
    )] or [p for p in parsed if p.substantive]
    future = sum(p.future_annotations for p in modules)
    return ImportStyle(
        sorted=sorted_share >= _SORTED_SHARE,
        relative=relative > absolute,
        future_annotations=bool(modules) and future * 2 > len(modules),
    )
