"""Localisation, scope: which files are the project's own code (not tests, vendored code or docs)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import PurePosixPath

from diffusellm.pipeline.locate.chunks import is_test_path

VENDORED = frozenset({
    "vendor", "_vendor", "vendored", "extern", "externals", "_externals", "third_party",
    "thirdparty", "site-packages", "node_modules",
})
"""Folders holding someone else's code, at any depth."""
OUTSIDE = frozenset({
    "doc", "docs", "example", "examples", "benchmark", "benchmarks", "bench", "asv_bench",
    "tools", "scripts", "ci", "build_tools", "packages", "contrib", "tutorials", "gallery",
})
"""Top-level folders that are not the shipped package (docs, examples, benchmarks, tooling)."""
TOOLING = frozenset({"setup.py", "noxfile.py", "fabfile.py", "tasks.py", "conftest.py"})
"""Top-level files that build or run the project rather than being it."""


def packages(paths: Iterable[str]) -> set[str]:
    """Top-level import packages: folders (at the root or under `src/`) with an `__init__.py`."""
    found: set[str] = set()
    for path in paths:
        parts = PurePosixPath(path).parts
        if parts[0] == "src" and len(parts) == 3 and parts[2] == "__init__.py":
            found.add(f"src/{parts[1]}")
        elif len(parts) == 2 and parts[1] == "__init__.py" and parts[0] not in OUTSIDE:
            found.add(parts[0])
    return {p for p in found if not is_test_path(p + "/x.py")}


def own_code(paths: Iterable[str]) -> set[str]:
    """The paths that are the project's own code: inside one of its packages (or anywhere, when
    it has none), never tests, vendored code, docs, examples or benchmarks."""
    listed = list(paths)
    roots = packages(listed)
    kept: set[str] = set()
    for path in listed:
        parts = PurePosixPath(path).parts
        if (is_test_path(path) or VENDORED.intersection(parts[:-1])
                or (len(parts) == 1 and parts[0] in TOOLING)):
            continue
        if roots and not any(path.startswith(r + "/") for r in roots):
            continue
        if not roots and len(parts) > 1 and parts[0] in OUTSIDE:
            continue
        kept.add(path)
    return kept
