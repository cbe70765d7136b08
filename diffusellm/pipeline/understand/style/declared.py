"""Phase 1 style profiling: the layout a repository declares (formatter tables, pre-commit hooks,
.editorconfig, isort and flake8 settings), each fact with the place it was read from."""

from __future__ import annotations

import configparser
import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar, cast

import yaml

from diffusellm.pipeline.understand.style.config import configured_line_length, read_text, toml_table

_PRE_COMMIT = ".pre-commit-config.yaml"
_FORMATTER_HOOKS = {"ruff-format": "ruff format", "black": "black", "black-jupyter": "black"}
_LENGTH_FLAGS = ("--line-length", "-l", "--max-line-length", "--line-width")
_NO_NORMALISATION = ("-S", "--skip-string-normalization")
_BRACES = re.compile(r"\{([^{}]*)\}")
_DEFAULT_LENGTH = 88  # black's and ruff's
T = TypeVar("T")
Quote = Literal["double", "single"]


@dataclass(frozen=True)
class Fact(Generic[T]):
    """One declared setting and where it was read from."""

    value: T
    source: str


@dataclass(frozen=True)
class Declared:
    """What the repository's own configuration says about layout; None where it says nothing."""

    indent: Fact[tuple[Literal["space", "tab"], int]] | None
    quote: Fact[Quote] | None
    line_length: Fact[int] | None


@dataclass(frozen=True)
class _Hook:
    id: str
    args: list[str]


def _hooks(root: Path) -> list[_Hook]:
    """The hooks of `.pre-commit-config.yaml` (id and args); empty when absent or unreadable."""
    try:
        data: Any = yaml.safe_load(read_text(root / _PRE_COMMIT, 256 * 1024)) or {}
    except yaml.YAMLError:
        return []
    hooks: list[_Hook] = []
    top = cast(dict[str, Any], data) if isinstance(data, dict) else {}
    repos: Any = top.get("repos")
    for entry in cast(list[Any], repos) if isinstance(repos, list) else []:
        repo = cast(dict[str, Any], entry) if isinstance(entry, dict) else {}
        found: Any = repo.get("hooks")
        for item in cast(list[Any], found) if isinstance(found, list) else []:
            hook = cast(dict[str, Any], item) if isinstance(item, dict) else {}
            if isinstance(hook.get("id"), str):
                args: Any = hook.get("args")
                words = [str(a) for a in cast(list[Any], args)] if isinstance(args, list) else []
                hooks.append(_Hook(str(hook["id"]), words))
    return hooks


def _flag_value(args: list[str], flags: tuple[str, ...]) -> str | None:
    for i, arg in enumerate(args):
        for flag in flags:
            if arg == flag and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(flag + "="):
                return arg.split("=", 1)[1]
    return None


def _hook_length(hooks: list[_Hook]) -> Fact[int] | None:
    for hook in hooks:
        value = _flag_value(hook.args, _LENGTH_FLAGS)
        if value is not None and value.isdigit() and 0 < int(value) <= 320:
            return Fact(int(value), f"{_PRE_COMMIT} {hook.id} hook args")
    return None


def _formatter(root: Path, hooks: list[_Hook]) -> tuple[str, str] | None:
    """(formatter, where) when black or ruff format lays the code out; None when neither is declared."""
    for hook in hooks:
        if hook.id in _FORMATTER_HOOKS:
            return _FORMATTER_HOOKS[hook.id], f"{_PRE_COMMIT} {hook.id} hook"
    if toml_table(root / "pyproject.toml", "tool", "ruff", "format") is not None:
        return "ruff format", "pyproject.toml [tool.ruff.format]"
    for name in ("ruff.toml", ".ruff.toml"):
        if toml_table(root / name, "format") is not None:
            return "ruff format", f"{name} [format]"
    if toml_table(root / "pyproject.toml", "tool", "black") is not None:
        return "black", "pyproject.toml [tool.black]"
    return None


def _ruff_setting(root: Path, key: str, *sub: str) -> Fact[object] | None:
    for name, keys in (("ruff.toml", ()), (".ruff.toml", ()), ("pyproject.toml", ("tool", "ruff"))):
        table = toml_table(root / name, *keys, *sub)
        if table is not None and key in table:
            where = ".".join((*keys, *sub))
            return Fact(table[key], f"{name}{f' [{where}]' if where else ''} {key}")
    return None


def _editorconfig(root: Path) -> dict[str, Fact[str]]:
    """The .editorconfig properties that apply to a Python file, later sections winning."""
    parser = configparser.ConfigParser(interpolation=None, strict=False, default_section="\0")
    try:
        parser.read_string("[\0]\n" + read_text(root / ".editorconfig", 64 * 1024))
    except configparser.Error:
        return {}
    props: dict[str, Fact[str]] = {}
    for section in parser.sections():
        if any(fnmatch.fnmatch("module.py", glob.replace("**", "*")) for glob in _expand(section)):
            for key, value in parser.items(section):
                props[key.lower()] = Fact(value.strip().lower(), f".editorconfig [{section}] {key}")
    return props


def _expand(glob: str) -> list[str]:
    match = _BRACES.search(glob)
    if match is None:
        return [glob]
    head, tail = glob[: match.start()], glob[match.end() :]
    return [x for part in match.group(1).split(",") for x in _expand(head + part + tail)]


def _isort_length(root: Path) -> Fact[int] | None:
    table = toml_table(root / "pyproject.toml", "tool", "isort")
    if table is None:
        return None
    value = table.get("line_length")
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 320:
        return Fact(value, "pyproject.toml [tool.isort] line_length")
    if table.get("profile") == "black":
        return Fact(_DEFAULT_LENGTH, "pyproject.toml [tool.isort] profile = black (88)")
    return None


def _line_length(root: Path, hooks: list[_Hook], formatter: tuple[str, str] | None) -> Fact[int] | None:
    configured = configured_line_length(root)
    formatter_keys = ("ruff", "black")
    if configured is not None and any(k in configured.source for k in formatter_keys):
        return Fact(configured.value, configured.source)
    hooked = _hook_length(hooks)
    if hooked is not None:
        return hooked
    if formatter is not None:
        return Fact(_DEFAULT_LENGTH, f"{formatter[1]} ({formatter[0]} defaults to {_DEFAULT_LENGTH})")
    isort = _isort_length(root)
    if isort is not None:
        return isort
    if configured is not None:
        return Fact(configured.value, configured.source)
    editor = _editorconfig(root).get("max_line_length")
    return Fact(int(editor.value), editor.source) if editor is not None and editor.value.isdigit() else None


def _quote(root: Path, hooks: list[_Hook], formatter: tuple[str, str] | None) -> Fact[Quote] | None:
    style = _ruff_setting(root, "quote-style", "format")
    if style is not None:  # "preserve" declares no preference
        quotes: dict[object, Quote] = {"double": "double", "single": "single"}
        value = quotes.get(style.value)
        return Fact(value, style.source) if value is not None else None
    black = toml_table(root / "pyproject.toml", "tool", "black") or {}
    skipped = black.get("skip-string-normalization") is True or any(
        a in _NO_NORMALISATION for h in hooks if h.id.startswith("black") for a in h.args
    )
    if formatter is None or (formatter[0] == "black" and skipped):
        return None
    return Fact("double", f"{formatter[1]} ({formatter[0]} defaults to double quotes)")


def _indent(root: Path, formatter: tuple[str, str] | None) -> Fact[tuple[Literal["space", "tab"], int]] | None:
    width = _ruff_setting(root, "indent-width")
    style = _ruff_setting(root, "indent-style", "format")
    if style is not None and style.value == "tab":
        return Fact(("tab", 4), style.source)
    if width is not None and isinstance(width.value, int) and 0 < width.value <= 8:
        return Fact(("space", width.value), width.source)
    if formatter is not None:
        return Fact(("space", 4), f"{formatter[1]} ({formatter[0]} indents with 4 spaces)")
    props = _editorconfig(root)
    kind, size = props.get("indent_style"), props.get("indent_size")
    if kind is not None and kind.value == "tab":
        return Fact(("tab", 4), kind.source)
    if size is not None and size.value.isdigit() and 0 < int(size.value) <= 8:
        return Fact(("space", int(size.value)), size.source)
    return None


def declared_style(root: Path) -> Declared:
    """Indentation, quotes and line length as the repository's configuration declares them.

    Formatter settings come first (ruff, black, their pre-commit hook args), then what the formatter
    in use implies by default, then isort, flake8 / pycodestyle and .editorconfig."""
    hooks = _hooks(root)
    formatter = _formatter(root, hooks)
    return Declared(
        indent=_indent(root, formatter),
        quote=_quote(root, hooks, formatter),
        line_length=_line_length(root, hooks, formatter),
    )
