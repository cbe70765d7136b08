"""Tests for `profile_style` on small real git repositories written in two opposite styles."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from diffusellm.errors import RepositoryError
from diffusellm.pipeline.understand.style.infer import profile_style

SNAKE_STORE = '''\
"""Storage of records on disk."""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

from pkg_a.text_utils import clean_text

MAX_RECORDS = 100
default_name = "records"


class RecordStore:
    """Keeps records in one directory."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir

    def load_records(self, file_name: str, max_count: int = MAX_RECORDS) -> list[str]:
        """Load the records of one file.

        Args:
            file_name: Name of the file inside the base directory.
            max_count: How many records to keep.

        Returns:
            The cleaned records.
        """
        full_path = os.path.join(self.base_dir, file_name)
        with open(full_path, encoding="utf-8") as handle:
            raw_items = json.load(handle)
        settings = yaml.safe_load("{}")
        return [clean_text(item, settings) for item in raw_items[:max_count]]
'''

SNAKE_UTILS = '''\
"""Text helpers."""

from __future__ import annotations

import re
import unicodedata

EXTRA_SPACE = re.compile(r"\\s+")


def clean_text(raw_text: str, settings: dict[str, str]) -> str:
    """Normalise one record.

    Args:
        raw_text: The text as stored.
        settings: Options; "form" picks the unicode normal form.

    Raises:
        ValueError: When the text is empty.
    """
    if not raw_text:
        raise ValueError("empty record")
    normal_form = settings.get("form", "NFC")
    clean_value = unicodedata.normalize(normal_form, raw_text)  # type: ignore[arg-type]
    return EXTRA_SPACE.sub(" ", clean_value).strip() + settings.get("end", "").rstrip()


def join_lines(text_lines: list[str]) -> str:
    """Join lines with single newlines."""
    return "\\n".join(line.rstrip() for line in text_lines)
'''

CAMEL_STORE = """\
'''Storage of records.'''
import sys
import os
from .textUtils import cleanText

maxRecords = 100
MAX_SIZE = 5


class RecordStore:
  '''Keeps records.'''

  def loadRecords(self, fileName, maxCount=maxRecords):
    '''Load records.

    Parameters
    ----------
    fileName : str
        Name of the file.

    Returns
    -------
    list
        The records.
    '''
    fullPath = os.path.join('base', fileName)
    rawItems = open(fullPath).read().split('\\n')
    sys.stderr.write('loaded %d records\\n' % len(rawItems))
    # LONG LINE
    return [cleanText(item) for item in rawItems[:maxCount]]
"""

CAMEL_UTILS = """\
'''Text helpers.'''
import re
from . import dataStore


def cleanText(rawText, extraChars=''):
  '''Clean one record.

  Parameters
  ----------
  rawText : str
      The text.
  '''
  cleanValue = rawText.strip(' ' + extraChars)
  if not cleanValue:
    return dataStore.MAX_SIZE and ''
  return re.sub('\\\\s+', ' ', cleanValue)


def joinLines(textLines):
  '''Join lines.'''
  return '\\n'.join(textLines)
"""


def git(repo: Path, *args: str) -> str:
    """Run real git in `repo` with a fixed identity."""
    done = subprocess.run(
        ["git", "-c", "user.name=Style Test", "-c", "user.email=style@example.com",
         "-c", "commit.gpgsign=false", *args],
        cwd=repo, check=True, capture_output=True, text=True,
    )
    return done.stdout


def make_repo(root: Path, files: dict[str, str], subjects: list[str]) -> Path:
    """A git repository holding `files`, with one commit per subject (oldest first)."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    git(root, "add", "-A")
    for subject in subjects:
        git(root, "commit", "-q", "--allow-empty", "-m", subject)
    return root


def snake_repo(root: Path) -> Path:
    """4 spaces, double quotes, snake_case, google docstrings, conventional commits."""
    files = {
        "pkg_a/__init__.py": '"""Package A."""\n',
        "pkg_a/data_store.py": SNAKE_STORE,
        "pkg_a/text_utils.py": SNAKE_UTILS,
        "CHANGELOG.md": "# Changelog\n\nAll notable changes.\n\n## [Unreleased]\n\n### Added\n\n"
                        "- Record store.\n\n## [0.1.0] - 2024-01-01\n\n### Fixed\n\n- Typo.\n",
    }
    subjects = ["feat: add record store", "fix(store): close files", "chore: tidy",
                "docs: explain records", "feat(utils)!: drop python 3.8"]
    return make_repo(root, files, subjects)


def camel_repo(root: Path) -> Path:
    """2 spaces, single quotes, camelCase, numpy docstrings, gitmoji commits, towncrier.

    Its longest code line (115 characters) makes the measured line length 120.
    """
    terms = ["len(itemValue) for itemValue in rawItems)", "len(fullPath)", "len(fileName)",
             "maxCount", "MAX_SIZE"]
    long_line = "    totalSize = sum(" + " + ".join(terms)
    files = {
        "pkgb/__init__.py": "",
        "pkgb/dataStore.py": CAMEL_STORE.replace("    # LONG LINE", long_line),
        "pkgb/textUtils.py": CAMEL_UTILS,
        "pyproject.toml": '[tool.towncrier]\ndirectory = "changes"\n\n'
                          '[[tool.towncrier.type]]\ndirectory = "feature"\nname = "Features"\n\n'
                          '[[tool.towncrier.type]]\ndirectory = "bugfix"\nname = "Bug fixes"\n',
    }
    subjects = [":tada: first commit", "✨ add record store", "🐛 fix empty records",
                ":memo: document helpers"]
    return make_repo(root, files, subjects)


def test_snake_case_repository(tmp_path: Path) -> None:
    profile = profile_style(snake_repo(tmp_path / "a"))
    assert (profile.indent, profile.indent_width, profile.indent_char) == ("4 spaces", 4, "space")
    assert profile.quote_style == "double"
    assert profile.line_length == 88
    assert profile.docstring_style == "google"
    assert profile.naming == {
        "module": "snake_case", "class": "PascalCase", "function": "snake_case",
        "method": "snake_case", "constant": "UPPER_CASE", "variable": "snake_case",
        "parameter": "snake_case",
    }
    assert profile.imports.sorted is True
    assert profile.imports.relative is False
    assert profile.imports.future_annotations is True
    assert profile.commit_convention == "conventional"
    assert profile.commit_examples == ["feat(utils)!: drop python 3.8", "docs: explain records",
                                       "chore: tidy", "fix(store): close files",
                                       "feat: add record store"]
    assert profile.changelog.model_dump() == {
        "format": "keepachangelog", "path": "CHANGELOG.md", "fragment_types": [],
        "unreleased_heading": "## [Unreleased]", "new_section": None, "bullet": "- ",
        "reference": None,
        "evidence": ["CHANGELOG.md: Keep a Changelog sections; top section '[Unreleased]'"],
    }
    assert profile.files_profiled == 3


def test_camel_case_repository(tmp_path: Path) -> None:
    profile = profile_style(camel_repo(tmp_path / "b"))
    assert (profile.indent, profile.indent_width, profile.indent_char) == ("2 spaces", 2, "space")
    assert profile.quote_style == "single"
    assert profile.line_length == 120
    assert profile.docstring_style == "numpy"
    assert profile.naming == {
        "module": "camelCase", "class": "PascalCase", "function": "camelCase",
        "method": "camelCase", "constant": "UPPER_CASE", "variable": "camelCase",
        "parameter": "camelCase",
    }
    assert profile.imports.sorted is False
    assert profile.imports.relative is True
    assert profile.imports.future_annotations is False
    assert profile.commit_convention == "gitmoji"
    assert profile.commit_examples[0] == ":memo: document helpers"
    assert len(profile.commit_examples) == 4
    assert profile.changelog.model_dump() == {
        "format": "towncrier", "path": "changes", "fragment_types": ["feature", "bugfix"],
        "unreleased_heading": None, "new_section": None, "bullet": "- ", "reference": None,
        "evidence": ["pyproject.toml [tool.towncrier]"],
    }


def test_tabs_and_explicit_file_list(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "t", {
        "tabbed.py": "def run_all(items):\n\tfor item in items:\n\t\tif item:\n\t\t\tprint(item)\n",
        "spaced.py": "def run_one(item):\n    return item\n",
    }, [])
    assert profile_style(repo).indent == "tabs"
    only = profile_style(repo, files=["spaced.py"])
    assert (only.indent, only.indent_char, only.files_profiled) == ("4 spaces", "space", 1)


def test_quote_count_ignores_docstrings_and_forced_quotes(tmp_path: Path) -> None:
    source = (
        '"""Module docstring with "double" quotes."""\n'
        "A = 'one'\nB = 'two'\n"
        'C = "it\'s forced"\nD = "also isn\'t free"\nE = f"{A!r} isn\'t counted"\n'
        'def f():\n    """Docstring."""\n    return "x" + \'y\' + \'z\'\n'
    )
    repo = make_repo(tmp_path / "q", {"mod.py": source}, [])
    assert profile_style(repo).quote_style == "single"


def test_undecodable_and_broken_files_are_skipped(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "s", {"good_module.py": "def load_file(file_name):\n  return 1\n"},
                     [])
    (repo / "latin.py").write_bytes(b"NAME = '\xe9t\xe9'\n")
    (repo / "broken.py").write_text("def broken(:\n    pass\n", encoding="utf-8")
    (repo / "py2.py").write_text("print 'hello'\n", encoding="utf-8")
    profile = profile_style(repo)
    assert profile.files_profiled == 1
    assert profile.indent == "2 spaces"


@pytest.mark.parametrize(
    ("config_name", "text", "expected"),
    [
        ("pyproject.toml", "[tool.black]\nline-length = 100\n", 100),
        ("pyproject.toml", "[tool.ruff]\nline-length = 110\n", 110),
        ("ruff.toml", "line-length = 99\n", 99),
        ("setup.cfg", "[flake8]\nmax-line-length = 119  # long\n", 119),
        ("tox.ini", "[flake8]\nmax_line_length = 79\n", 79),
    ],
)
def test_configured_line_length_wins(
    tmp_path: Path, config_name: str, text: str, expected: int
) -> None:
    repo = snake_repo(tmp_path / "c")
    (repo / config_name).write_text(text, encoding="utf-8")
    assert profile_style(repo).line_length == expected


@pytest.mark.parametrize(
    ("subjects", "convention"),
    [
        (["[core] Add cache", "[docs] Explain cache", "[core] Fix cache key"], "bracketed"),
        (["Add cache", "Fix cache key", "Remove old loader", "[ci] pin runner"], "imperative"),
        (["feat: add cache", "Fix typo", "fix(cache): key", "Merge branch"], "conventional"),
    ],
)
def test_commit_conventions(tmp_path: Path, subjects: list[str], convention: str) -> None:
    repo = make_repo(tmp_path / "g", {"mod.py": "VALUE = 1\n"}, subjects)
    profile = profile_style(repo)
    assert profile.commit_convention == convention
    assert profile.commit_examples[0] in subjects


def test_no_history_and_no_code(tmp_path: Path) -> None:
    profile = profile_style(tmp_path)
    assert profile.commit_convention == "none"
    assert profile.commit_examples == []
    assert profile.files_profiled == 0
    assert profile.docstring_style == "none"
    assert profile.changelog.format == "none"


def test_missing_repository_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(RepositoryError, match="not a directory") as caught:
        profile_style(tmp_path / "absent")
    assert caught.value.hint
