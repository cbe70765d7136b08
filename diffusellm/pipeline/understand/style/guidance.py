"""Phase 1 style profiling: what a repository tells contributors and coding agents (AGENTS.md,
CONTRIBUTING, copilot-instructions): commands, paths not to touch, and bounded prose for prompts.

The text is untrusted: it is cut to size, and lines that speak about permissions, secrets or the
network are dropped, so guidance can inform the model but never widen what a run may do."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from diffusellm.pipeline.understand.style.config import read_text
from diffusellm.pipeline.understand.style.profile import GuidanceFact, GuidanceFile, RepoGuidance

AGENTS = "AGENTS.md"
COPILOT = ".github/copilot-instructions.md"
CONTRIBUTING = ("CONTRIBUTING.md", "CONTRIBUTING.rst", ".github/CONTRIBUTING.md", "docs/contributing.md",
                "docs/contributing.rst", "docs/source/contributing.rst", "doc/contributing.rst")
FILE_CHARS = 2000
PROMPT_CHARS = 1200  # the embedded models are small; guidance must not crowd out the code
_READ_BYTES = 64 * 1024
_MAX_AGENTS_FILES = 20
_SKIPPED_DIRS = frozenset({".git", ".venv", "venv", "node_modules", "__pycache__", ".tox", ".nox", "build", "dist"})
_INCLUDE = re.compile(r"(?:^|\s)@([\w./-]+\.(?:md|rst|txt))\b")
_POINTER_CHARS = 300  # a CONTRIBUTING file this short only points elsewhere: read the next one
_WIDENING = re.compile(
    r"allowed[_ ]paths|blocked[_ ]paths|diffusellm|ignore (all|any|previous|the above)|secret|token|passw|"
    r"api[ _-]?key|credential|private key|\bssh\b|network|internet|\bcurl\b|\bwget\b|permission|sudo|"
    r"force[- ]push|sandbox",
    re.I,
)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_WRAPPERS = r"(?:(?:uv|poetry|pdm|hatch|pipenv) run\s+)?"
_PYTEST = re.compile(rf"^{_WRAPPERS}(?:python3?\s+-\w*m\s+)?pytest\b")
_TEST = re.compile(
    rf"^(?:\(\S+\)\s*)?\$?\s*({_WRAPPERS}(?:python3?\s+-\w*m\s+)?(?:pytest|unittest)\b.*|(?:tox|nox)\b(?!.*\b(?:lint|format|docs?|style|typing|mypy)\b).*|"
    r"make test\w*|just test\b.*|hatch test\b.*)$"
)
_LINT = re.compile(
    rf"^(?:\(\S+\)\s*)?\$?\s*({_WRAPPERS}(?:pre-commit run\b.*|ruff check\b.*|flake8\b.*|make lint\b.*|"
    r"just lint\b.*|tox -e (?:lint|style)\b.*|nox -s lint\b.*))$"
)
_CODE_SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?![`_])")
_RST_LITERAL = re.compile(r"``([^`\n]+)``")
_SHELL_LINE = re.compile(r"^\s*(?:\(\S+\)\s*)?\$\s")
_DONT_TOUCH = re.compile(r"\b(do not|don't|never|must not)\b.{0,30}\b(edit|modify|change|touch|commit to)\b", re.I)
_PATHISH = re.compile(r"^[\w.*-]+(/[\w.*-]*)*/?$")


def _agents_files(root: Path) -> list[str]:
    """Every AGENTS.md in the repository (bounded), the root's first."""
    found: list[str] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS and not d.startswith("."))
        if AGENTS in files:
            found.append((Path(folder) / AGENTS).relative_to(root).as_posix())
        if len(found) >= _MAX_AGENTS_FILES:
            break
    return sorted(found, key=lambda rel: (rel.count("/"), rel))


def _inside(root: Path, rel: str) -> Path | None:
    path = (root / rel).resolve()
    return path if path.is_file() and path.is_relative_to(root.resolve()) else None


def _expand(root: Path, rel: str, text: str) -> list[tuple[str, str]]:
    """The file and the files its `@path` lines import (one level, Claude-style), in order."""
    parts = [(rel, text)]
    base = PurePosixPath(rel).parent
    for match in _INCLUDE.finditer(text):
        target = (base / match.group(1)).as_posix()
        path = _inside(root, target)
        if path is not None and target not in [r for r, _ in parts]:
            parts.append((target, read_text(path, _READ_BYTES)))
    return parts


def _clean(text: str) -> tuple[str, int]:
    """Text for a prompt: comments removed, widening lines dropped, cut to FILE_CHARS."""
    kept: list[str] = []
    dropped = 0
    for line in _COMMENT.sub("", text).splitlines():
        if _WIDENING.search(line):
            dropped += 1
            continue
        kept.append(line.rstrip())
    body = re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()
    return body[:FILE_CHARS], dropped


def _code_lines(rel: str, text: str) -> list[tuple[int, str]]:
    """(line number, text) of what a file shows as code: inline code, fenced or indented blocks,
    `$ ` lines. rst's single backticks are links or roles, not code."""
    rst = rel.endswith(".rst")
    found: list[tuple[int, str]] = []
    fenced = False
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        spans = (_RST_LITERAL if rst else _CODE_SPAN).findall(line)
        found += [(number, span.strip()) for span in spans]
        if not spans and (fenced or _SHELL_LINE.match(line) or line.startswith("    ")):
            found.append((number, line.strip()))
    return found


def _command(parts: list[tuple[str, str]], pattern: re.Pattern[str]) -> GuidanceFact | None:
    """The first command of its kind the files show; a pytest one first, since that is what the
    sandbox can run."""
    found: list[GuidanceFact] = []
    for rel, text in parts:
        for number, code in _code_lines(rel, text):
            match = pattern.match(code)
            if match and not _WIDENING.search(code):
                value = re.sub(r"\s+#.*$", "", match.group(1)).strip()
                found.append(GuidanceFact(value=value, source=f"{rel} line {number}"))
    return next((f for f in found if _PYTEST.match(f.value)), found[0] if found else None)


def _protected(parts: list[tuple[str, str]]) -> list[GuidanceFact]:
    """Paths a line tells contributors not to edit (`Do not edit `src/_vendor/``), as globs."""
    found: list[GuidanceFact] = []
    for rel, text in parts:
        for number, line in enumerate(text.splitlines(), start=1):
            if not _DONT_TOUCH.search(line):
                continue
            for span in _CODE_SPAN.findall(line):
                span = span.strip().lstrip("./")
                if _PATHISH.match(span) and ("/" in span or "." in span):
                    glob = f"{span}*" if span.endswith("/") else span
                    found.append(GuidanceFact(value=glob, source=f"{rel} line {number}"))
    return found


def read_guidance(root: Path) -> RepoGuidance:
    """The instruction files of a work copy: AGENTS.md files (each applying to its folder), the
    copilot instructions and the contributing guide, with the facts a machine can use."""
    files: list[GuidanceFile] = []
    every: list[tuple[str, str]] = []
    for rel in [*_agents_files(root), COPILOT, *CONTRIBUTING]:
        path = _inside(root, rel)
        read = {r for f in files for r in (f.path, *f.includes)}
        if path is None or rel in read or (rel in CONTRIBUTING and any(_guide(f) for f in files)):
            continue
        parts = _expand(root, rel, read_text(path, _READ_BYTES))
        every += parts
        text, dropped = _clean("\n\n".join(t for _, t in parts))
        scope = str(PurePosixPath(rel).parent) if rel.endswith(AGENTS) else "."
        files.append(GuidanceFile(path=rel, includes=[r for r, _ in parts[1:]], scope=scope,
                                  text=text, dropped_lines=dropped))
    return RepoGuidance(files=files, test_command=_command(every, _TEST), lint_command=_command(every, _LINT),
                        protected_paths=_protected(every))


def _tox_command(root: Path) -> GuidanceFact | None:
    """The first pytest or unittest command of tox.ini's test environments."""
    lines = read_text(root / "tox.ini", _READ_BYTES).splitlines()
    for number, line in enumerate(lines, start=1):
        code = re.sub(r"^\s*(commands\s*=)?\s*([\w,{}-]+:\s+)?", "", line)
        code = re.sub(r"\{envpython\}", "python", re.sub(r"\{posargs[^}]*\}", "", code)).strip(" \\")
        if re.match(r"^(?:\{env:\w+:)?(?:python3?\s+-\w*m\s+)?(pytest|unittest)\b", code):
            value = re.sub(r"^\{env:\w+:(\w+)\}", r"\1", code).strip()
            return GuidanceFact(value=value, source=f"tox.ini line {number}")
    return None


def declared_test_command(root: Path, guidance: RepoGuidance) -> GuidanceFact | None:
    """How the maintainers run the tests: the instruction files' command, else tox.ini's, else
    plain `pytest` when pytest is configured."""
    if guidance.test_command is not None:
        return guidance.test_command
    tox = _tox_command(root)
    if tox is not None:
        return tox
    pyproject = read_text(root / "pyproject.toml", _READ_BYTES)
    for name, marker in (("pyproject.toml", "[tool.pytest"), ("pytest.ini", "[pytest]"),
                         ("setup.cfg", "[tool:pytest]"), ("tox.ini", "[pytest]")):
        text = pyproject if name == "pyproject.toml" else read_text(root / name, _READ_BYTES)
        if marker in text:
            return GuidanceFact(value="pytest", source=f"{name} {marker}{']' if name == 'pyproject.toml' else ''}")
    return None


def _guide(file: GuidanceFile) -> bool:
    """Whether a contributing file already read is a real guide, not a pointer to one."""
    return file.path in CONTRIBUTING and len(file.text) >= _POINTER_CHARS


def _applies(scope: str, changed: Sequence[str]) -> bool:
    return scope == "." or any(PurePosixPath(f).is_relative_to(scope) for f in changed)


def guidance_text(guidance: RepoGuidance, changed: Sequence[str] = ()) -> str:
    """Guidance for a prompt: the AGENTS.md nearest to the changed files, then the root's, the
    copilot instructions and the contributing guide; at most PROMPT_CHARS characters."""
    agents = [f for f in guidance.files if f.path.endswith(AGENTS) and _applies(f.scope, changed)]
    agents.sort(key=lambda f: -f.scope.count("/") - (f.scope != "."))
    others = [f for f in guidance.files if not f.path.endswith(AGENTS)]
    blocks = [f"From {f.path}:\n{f.text}" for f in [*agents, *others] if f.text]
    return "\n\n".join(blocks)[:PROMPT_CHARS]
