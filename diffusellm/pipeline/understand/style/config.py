"""Phase 1 style profiling: settings a repository already declares (line length in tool configs)."""

from __future__ import annotations

import configparser
import os
import re
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import cast

_MAX_LINE_LENGTH = 320  # ruff refuses longer limits
_INI_FILES = ("setup.cfg", "tox.ini", ".flake8")
_INI_SECTIONS = ("flake8", "pycodestyle", "pep8")
_INI_KEYS = ("max-line-length", "max_line_length")
_LEADING_INT = re.compile(r"^\s*(\d+)")


@dataclass(frozen=True)
class ConfiguredValue:
    """A setting found in the repository's own configuration, and where."""

    value: int
    source: str
    """For example `pyproject.toml [tool.black] line-length`."""


def read_text(path: Path, limit: int = 1024 * 1024) -> str:
    """The start of a text file as UTF-8 (bad bytes replaced); empty when unreadable.

    A symbolic link, FIFO or other special file reads as empty: nothing is read through a link.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError:
        return ""
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return ""
        return handle.read(limit).decode("utf-8", "replace")


def toml_table(path: Path, *keys: str) -> dict[str, object] | None:
    """The table at `keys` of a TOML file; None when the file or table is missing or invalid."""
    if not path.is_file():
        return None
    try:
        table: object = tomllib.loads(read_text(path))
    except tomllib.TOMLDecodeError:
        return None
    for key in keys:
        if not isinstance(table, dict):
            return None
        table = cast(dict[str, object], table).get(key)
    return cast(dict[str, object], table) if isinstance(table, dict) else None


def _valid(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= _MAX_LINE_LENGTH:
        return value
    return None


def _from_toml(root: Path) -> ConfiguredValue | None:
    places = [
        ("ruff.toml", (), "line-length"),
        (".ruff.toml", (), "line-length"),
        ("pyproject.toml", ("tool", "ruff"), "line-length"),
        ("pyproject.toml", ("tool", "black"), "line-length"),
        ("pyproject.toml", ("tool", "black"), "line_length"),
        ("pyproject.toml", ("tool", "flake8"), "max-line-length"),
    ]
    for name, keys, key in places:
        table = toml_table(root / name, *keys)
        value = _valid(table.get(key)) if table is not None else None
        if value is not None:
            where = f" [{'.'.join(keys)}]" if keys else ""
            return ConfiguredValue(value=value, source=f"{name}{where} {key}")
    return None


def _from_ini(root: Path) -> ConfiguredValue | None:
    for name in _INI_FILES:
        path = root / name
        if not path.is_file():
            continue
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read_string(read_text(path))
        except configparser.Error:
            continue
        for section in _INI_SECTIONS:
            for key in _INI_KEYS:
                match = _LEADING_INT.match(parser.get(section, key, fallback=""))
                value = _valid(int(match.group(1))) if match else None
                if value is not None:
                    return ConfiguredValue(value=value, source=f"{name} [{section}] {key}")
    return None


def configured_line_length(root: Path) -> ConfiguredValue | None:
    """The line length the repository configures for ruff, black or flake8, when it does."""
    return _from_toml(root) or _from_ini(root)
