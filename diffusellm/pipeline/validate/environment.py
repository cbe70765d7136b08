"""Phase 6 environment plan: what a repository declares for its tests, read into uv install steps."""

from __future__ import annotations

import configparser
import hashlib
import re
import shlex
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from pydantic import BaseModel, ConfigDict

from diffusellm.pipeline.validate.outputs import OutputRefusedError, read_output
from diffusellm.pipeline.validate.settings import EnvironmentSettings

GROUPS = ("test", "tests", "dev")
EXTRAS = ("test", "tests", "testing", "dev")
LOCKS = ("uv.lock", "pylock.toml")
BUILD_FILES = ("pyproject.toml", "setup.py", "setup.cfg", "tox.ini", *LOCKS)
VENV = "venv"
"""The environment's folder inside its cache entry (and the build folder)."""
PROJECT = "project"
"""The repository copy an install step runs in, inside the build folder."""


class EnvironmentInfo(BaseModel):
    """The environment the checks ran in, for the run report and the PR's validation table."""

    model_config = ConfigDict(extra="forbid")

    how: str
    """How it was detected, e.g. "requirements-test.txt, extras [test]", or why there is none."""
    python: str
    """The interpreter the checks ran with."""
    packages: int = 0
    build_s: float = 0.0
    cache_hit: bool = False
    error: str | None = None
    """Why it could not be built (then the checks that need it are "not run")."""


@dataclass(frozen=True)
class EnvironmentPlan:
    """How to build one repository's environment: the install commands and the cache key."""

    how: str
    python: str
    """A version ("3.12") for uv to find, or an interpreter path."""
    steps: tuple[tuple[str, ...], ...]
    """Commands run in the sandbox, in the project copy; `{venv}` and `{uv}` are filled in."""
    key: str


def plan_environment(
    root: Path,
    settings: EnvironmentSettings,
    *,
    python: str,
    setup: Sequence[str] | None = None,
) -> EnvironmentPlan | None:
    """The plan for `root`'s test environment; None when it declares nothing to install.

    `setup` (the repository config's install commands) replaces detection; `python` is a version
    or an interpreter path.
    """
    index = _index_args(settings)
    extra = tuple(settings.test_packages)
    if setup:
        steps = [("{uv}", "venv", "--seed", "--python", python, "{venv}"),
                 *(("sh", "-c", command) for command in setup),
                 _pip_install(index, extra)]
        return _plan("setup commands (repository config)", python, steps, root, [*setup, *extra, *index])
    if (root / "uv.lock").is_file() and _has_project(root):
        steps = [("{uv}", "sync", "--frozen", "--all-extras", "--all-groups", "--python", python, *index),
                 _pip_install(index, extra)]
        return _plan("uv.lock", python, steps, root, [*extra, *index])
    how, args = _declared(root)
    if not args:
        return None
    steps = [("{uv}", "venv", "--python", python, "{venv}"), _pip_install(index, (*args, *extra))]
    return _plan(how, python, steps, root, [*args, *extra, *index])


def _plan(
    how: str, python: str, steps: Sequence[tuple[str, ...]], root: Path, words: Sequence[str]
) -> EnvironmentPlan:
    return EnvironmentPlan(how, python, tuple(steps), declaration_key(root, python, words))


def _pip_install(index: Sequence[str], args: Sequence[str]) -> tuple[str, ...]:
    return ("{uv}", "pip", "install", "--python", "{venv}/bin/python", *index, *args)


def _index_args(settings: EnvironmentSettings) -> list[str]:
    args = ["--index-url", settings.index_url] if settings.index_url else []
    for folder in settings.find_links:
        args += ["--find-links", folder]
    return [*args, "--offline"] if settings.offline else args


def _declared(root: Path) -> tuple[str, list[str]]:
    """What the repository declares, in the issue's order, as `uv pip install` arguments."""
    found: list[str] = []
    args: list[str] = []
    if (root / "pylock.toml").is_file():
        found.append("pylock.toml")
        args += ["-r", "pylock.toml"]
    data = _pyproject(root)
    groups = [g for g in GROUPS if g in _table(data, "dependency-groups")]
    for group in groups:
        args += ["--group", group]
    if groups:
        found.append("dependency groups [" + ", ".join(groups) + "]")
    tox = tox_deps(root)
    for rel in _requirements_beside(requirement_files(root), tox):
        found.append(rel)
        args += ["-r", rel]
    if tox:
        found.append("tox.ini [testenv] deps")
        args += tox
    extras = [e for e in EXTRAS if e in _table(_table(data, "project"), "optional-dependencies")]
    if _has_project(root):
        found.append("the project, editable" + (f", extras [{', '.join(extras)}]" if extras else ""))
        args += ["-e", "." + (f"[{','.join(extras)}]" if extras else "")]
    return ", ".join(found), args


def _requirements_beside(files: list[str], tox: list[str]) -> list[str]:
    """The requirement files to install next to tox's deps. When tox names files with -r, those
    are how the project tests: its other requirements-*.txt (development, docs, one per Python
    version, which can pin conflicting versions) are left out; requirements.txt and
    test-requirements.txt stay."""
    named = {tox[i + 1] for i, word in enumerate(tox[:-1]) if word == "-r"}
    if not named:
        return files
    return [f for f in files if f not in named and f in ("requirements.txt", "test-requirements.txt")]


def requirement_files(root: Path) -> list[str]:
    """requirements*.txt, requirements/*.txt and test-requirements.txt, sorted."""
    found = {p for p in root.glob("requirements*.txt") if p.is_file()}
    found |= {p for p in root.glob("requirements/*.txt") if p.is_file()}
    found |= {p for p in (root / "test-requirements.txt",) if p.is_file()}
    return sorted(p.relative_to(root).as_posix() for p in found)


def tox_deps(root: Path) -> list[str]:
    """`[testenv] deps` of tox.ini as install arguments (`-r file` kept; tox substitutions dropped)."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(root / "tox.ini", encoding="utf-8")
        raw = parser.get("testenv", "deps", fallback="")
    except (configparser.Error, UnicodeDecodeError):
        return []
    args: list[str] = []
    for line in raw.splitlines():
        text = line.split("#", 1)[0].strip()
        if not text or "{" in text:
            continue
        if text.startswith("-r"):
            args += ["-r", text[2:].strip()]
        elif not text.startswith("-"):
            args.append(text)
    return args


def _has_project(root: Path) -> bool:
    return bool(_table(_pyproject(root), "project")) or (root / "setup.py").is_file()


_DECLARATION_BYTES = 4 * 1024 * 1024
"""Declaration files are read through `read_output` (no links, no FIFOs, capped): the repository is untrusted."""


def _pyproject(root: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(read_output(root, "pyproject.toml", limit=_DECLARATION_BYTES).decode("utf-8"))
    except (OutputRefusedError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


def _table(data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name)
    return cast(dict[str, Any], value) if isinstance(value, dict) else {}


def declaration_key(root: Path, python: str, words: Sequence[str]) -> str:
    """sha256 over the declaration files' contents, the Python version and the install words."""
    digest = hashlib.sha256()
    files = [*BUILD_FILES, *requirement_files(root), *_referenced(root)]
    for rel in sorted(set(files)):
        try:
            digest.update(f"{rel}\0".encode() + read_output(root, rel, limit=_DECLARATION_BYTES) + b"\0")
        except OutputRefusedError:  # absent, a link, a FIFO or too big: not a declaration we use
            continue
    digest.update(("\0".join([python, *words])).encode())
    return digest.hexdigest()[:24]


def _referenced(root: Path) -> list[str]:
    """Files that requirement files include with -r / -c (one level), so their edits count."""
    found: list[str] = []
    for rel in requirement_files(root):
        try:
            text = read_output(root, rel, limit=_DECLARATION_BYTES).decode("utf-8", "replace")
        except OutputRefusedError:
            continue
        for match in re.finditer(r"^\s*-[rc]\s*(\S+)", text, re.MULTILINE):
            found.append((Path(rel).parent / match.group(1)).as_posix())
    return found


def describe(plan: EnvironmentPlan) -> str:
    """The install commands as one readable line."""
    return " && ".join(shlex.join(step) for step in plan.steps)
