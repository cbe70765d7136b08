"""Tests that profile the real source of installed packages (copied out of site-packages)."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import ModuleType

import jedi
import libcst

from diffusellm.pipeline.understand.style.infer import profile_style


def copy_package(package: ModuleType, into: Path) -> Path:
    """Copy an installed package's Python sources to `into`/<name> (no git: files found on disk)."""
    source = Path(package.__file__ or "").parent
    target = into / source.name
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyc"))
    return into


def test_libcst_source(tmp_path: Path) -> None:
    profile = profile_style(copy_package(libcst, tmp_path))
    assert profile.files_profiled > 200
    assert (profile.indent, profile.quote_style) == ("4 spaces", "double")
    assert profile.line_length == 88  # black's default, which libcst is formatted with
    assert profile.naming["class"] == "PascalCase"
    assert profile.naming["function"] == "snake_case"
    assert profile.naming["method"] == "snake_case"  # despite visit_ClassDef and friends
    assert profile.naming["constant"] == "UPPER_CASE"
    assert profile.naming["module"] == "snake_case"
    assert profile.imports.sorted is True  # libcst runs usort
    assert profile.imports.relative is False
    assert profile.commit_convention == "none"


def test_jedi_source(tmp_path: Path) -> None:
    profile = profile_style(copy_package(jedi, tmp_path))
    assert profile.files_profiled > 50
    assert (profile.indent, profile.quote_style) == ("4 spaces", "single")
    assert profile.line_length == 100  # jedi's flake8 max-line-length
    assert profile.naming["class"] == "PascalCase"
    assert profile.naming["function"] == "snake_case"
    assert profile.naming["parameter"] == "snake_case"
    assert profile.docstring_style == "rest"  # :param x: fields
