"""Declared formatter settings win over what the code measures, and the profile says where each came from."""

from __future__ import annotations

from pathlib import Path

from diffusellm.pipeline.understand.style.declared import declared_style
from diffusellm.pipeline.understand.style.infer import profile_style

# Two-space indents and single quotes: what the code alone would suggest.
CODE = "def greet(name):\n  if name:\n    return 'hi ' + name\n  return 'hi'\n\n\nX = 'a'\nY = 'b'\n"


def repo(root: Path, files: dict[str, str]) -> Path:
    for rel, text in {"pkg/mod.py": CODE, **files}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_code_alone_is_measured(tmp_path: Path) -> None:
    profile = profile_style(repo(tmp_path, {}))
    assert (profile.indent, profile.quote_style, profile.sources) == ("2 spaces", "single", {})


def test_pre_commit_formatter_hook_declares_layout(tmp_path: Path) -> None:
    hooks = ("repos:\n  - repo: https://github.com/astral-sh/ruff-pre-commit\n    rev: v0.9.0\n"
             "    hooks:\n      - id: ruff-check\n      - id: ruff-format\n")
    profile = profile_style(repo(tmp_path, {".pre-commit-config.yaml": hooks}))
    assert (profile.indent, profile.quote_style, profile.line_length) == ("4 spaces", "double", 88)
    assert profile.sources == {
        "indent": ".pre-commit-config.yaml ruff-format hook (ruff format indents with 4 spaces)",
        "quote_style": ".pre-commit-config.yaml ruff-format hook (ruff format defaults to double quotes)",
        "line_length": ".pre-commit-config.yaml ruff-format hook (ruff format defaults to 88)",
    }
    assert profile.line_length_source == profile.sources["line_length"]


def test_black_hook_args_and_skip_string_normalization(tmp_path: Path) -> None:
    hooks = ("repos:\n- repo: https://github.com/psf/black\n  rev: 24.1.0\n  hooks:\n"
             "  - id: black\n    args: [--line-length=100, -S]\n")
    profile = profile_style(repo(tmp_path, {".pre-commit-config.yaml": hooks}))
    assert (profile.indent, profile.line_length) == ("4 spaces", 100)
    assert profile.quote_style == "single"  # -S: black keeps the quotes, so the code decides
    assert profile.sources["line_length"] == ".pre-commit-config.yaml black hook args"
    assert "quote_style" not in profile.sources


def test_editorconfig_for_python_files(tmp_path: Path) -> None:
    editorconfig = ("root = true\n\n[*]\nindent_style = space\nindent_size = 4\nmax_line_length = 80\n\n"
                    "[*.{py,pyi}]\nindent_size = 2\nmax_line_length = 100\n\n[*.yml]\nindent_size = 8\n")
    profile = profile_style(repo(tmp_path, {".editorconfig": editorconfig}))
    assert (profile.indent, profile.line_length) == ("2 spaces", 100)
    assert profile.sources["indent"] == ".editorconfig [*.{py,pyi}] indent_size"
    assert profile.sources["line_length"] == ".editorconfig [*.{py,pyi}] max_line_length"
    tabs = repo(tmp_path / "t", {".editorconfig": "[*.py]\nindent_style = tab\n"})
    assert profile_style(tabs).indent == "tabs"


def test_flake8_and_isort_rank_above_editorconfig(tmp_path: Path) -> None:
    files = {".editorconfig": "[*]\nmax_line_length = 120\n", "setup.cfg": "[flake8]\nmax-line-length = 99\n"}
    length = declared_style(repo(tmp_path, files)).line_length
    assert length is not None and (length.value, length.source) == (99, "setup.cfg [flake8] max-line-length")
    isort = repo(tmp_path / "i", {**files, "pyproject.toml": '[tool.isort]\nprofile = "black"\n'})
    length = declared_style(isort).line_length
    assert length is not None and length.value == 88 and "[tool.isort]" in length.source


def test_ruff_format_table_declares_quotes_and_tabs(tmp_path: Path) -> None:
    pyproject = '[tool.ruff]\nline-length = 79\n\n[tool.ruff.format]\nquote-style = "single"\nindent-style = "tab"\n'
    profile = profile_style(repo(tmp_path, {"pyproject.toml": pyproject}))
    assert (profile.indent, profile.quote_style, profile.line_length) == ("tabs", "single", 79)
    assert profile.sources == {
        "indent": "pyproject.toml [tool.ruff.format] indent-style",
        "quote_style": "pyproject.toml [tool.ruff.format] quote-style",
        "line_length": "pyproject.toml [tool.ruff] line-length",
    }
    preserve = repo(tmp_path / "p", {"pyproject.toml": '[tool.ruff]\nindent-width = 2\n[tool.ruff.format]\n'
                                     'quote-style = "preserve"\n'})
    declared = declared_style(preserve)
    assert declared.quote is None
    assert declared.indent is not None and declared.indent.value == ("space", 2)
