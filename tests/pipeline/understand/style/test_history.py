"""Tests for changelog detection and per-commit / per-docstring classification."""

from __future__ import annotations

from pathlib import Path

import pytest

from diffusellm.pipeline.understand.style.changelog import changelog_info
from diffusellm.pipeline.understand.style.code import docstring_kind
from diffusellm.pipeline.understand.style.history import commit_style
from diffusellm.pipeline.understand.style.infer import profile_style


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_keepachangelog_markdown_keeps_exact_heading(tmp_path: Path) -> None:
    write(tmp_path, {"CHANGES.md": "# Changes\n\n## Unreleased - next\n\n### Fixed\n- x\n"})
    info = changelog_info(tmp_path)
    assert (info.format, info.path, info.unreleased_heading) == (
        "keepachangelog", "CHANGES.md", "## Unreleased - next")


def test_keepachangelog_rst(tmp_path: Path) -> None:
    text = "History\n=======\n\n[Unreleased]\n------------\n\nAdded\n~~~~~\n\n- thing\n"
    write(tmp_path, {"HISTORY.rst": text})
    info = changelog_info(tmp_path)
    assert (info.format, info.path, info.unreleased_heading) == (
        "keepachangelog", "HISTORY.rst", "[Unreleased]")


def test_released_only_keepachangelog_has_no_unreleased_heading(tmp_path: Path) -> None:
    write(tmp_path, {"CHANGELOG.md": "# Changelog\n\n## [1.0.0] - 2024-05-01\n\n### Added\n- a\n"})
    info = changelog_info(tmp_path)
    assert (info.format, info.unreleased_heading) == ("keepachangelog", None)


def test_free_form_changelog_is_not_keepachangelog(tmp_path: Path) -> None:
    write(tmp_path, {"CHANGELOG.md": "Version 1 fixed some things.\nVersion 2 too.\n"})
    assert changelog_info(tmp_path).format == "none"


def test_towncrier_toml_with_fragment_tables(tmp_path: Path) -> None:
    write(tmp_path, {
        "towncrier.toml": '[tool.towncrier]\npackage = "mypkg"\npackage_dir = "src"\n\n'
                          "[tool.towncrier.fragment.breaking]\n[tool.towncrier.fragment.added]\n",
        "CHANGELOG.md": "# Changelog\n\n## [Unreleased]\n",
    })
    info = changelog_info(tmp_path)
    assert (info.format, info.path, info.fragment_types) == (
        "towncrier", "src/mypkg/newsfragments", ["breaking", "added"])


def test_towncrier_defaults_when_config_names_no_types(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": '[tool.towncrier]\ndirectory = "newsfragments"\n'})
    info = changelog_info(tmp_path)
    assert info.path == "newsfragments"
    assert info.fragment_types == ["feature", "bugfix", "doc", "removal", "misc"]


def test_fragment_directory_without_config(tmp_path: Path) -> None:
    write(tmp_path, {"changelog.d/12.bugfix.md": "Fixed.\n", "changelog.d/13.added.rst": "New.\n",
                     "changelog.d/14.bugfix.1.md": "Again.\n", "changelog.d/README.md": "How.\n"})
    info = changelog_info(tmp_path)
    assert (info.format, info.path, info.fragment_types) == (
        "towncrier", "changelog.d", ["bugfix", "added"])


def test_code_directory_named_changes_is_not_a_fragment_directory(tmp_path: Path) -> None:
    write(tmp_path, {"changes/apply.py": "X = 1\n", "changes/diff.txt": "\n"})
    assert changelog_info(tmp_path).format == "none"


@pytest.mark.parametrize(
    ("subject", "style"),
    [
        ("feat(api)!: drop v1", "conventional"),
        ("Fix: crash on start", "conventional"),
        ("✨ Add search", "gitmoji"),
        (":bug: fix crash", "gitmoji"),
        ("[api] Drop v1", "bracketed"),
        ("Add search box", "imperative"),
        ("fixing: stuff", "imperative"),
    ],
)
def test_commit_style_of_one_subject(subject: str, style: str) -> None:
    assert commit_style(subject) == style


@pytest.mark.parametrize(
    ("docstring", "style"),
    [
        ("Do it.\n\n    Args:\n        x: thing.\n    ", "google"),
        ("Do it.\n\n    Parameters\n    ----------\n    x : int\n    ", "numpy"),
        ("Do it.\n\n    :param x: thing.\n    :returns: other.\n    ", "rest"),
        ("Do it. Arguments: none worth a section.", "plain"),
    ],
)
def test_docstring_kind(docstring: str, style: str) -> None:
    assert docstring_kind(docstring) == style


REST_MODULE = '''"""Helpers."""


def load_file(file_name):
    """Load.

    :param file_name: the file.
    :returns: the text.
    """
    return file_name


def save_file(file_name):
    """Save."""
    return file_name
'''


@pytest.mark.parametrize(
    ("source", "style"),
    [
        (REST_MODULE, "rest"),
        (REST_MODULE.replace(":param file_name: the file.\n    :returns: the text.", "Plain."),
         "plain"),
        ("def load_file(file_name):\n    return file_name\n\n\nclass Store:\n    pass\n", "none"),
    ],
)
def test_repository_docstring_style(tmp_path: Path, source: str, style: str) -> None:
    write(tmp_path, {"helpers.py": source})
    assert profile_style(tmp_path).docstring_style == style
