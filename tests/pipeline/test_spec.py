"""The YAML spec contract: valid specs load, errors name the field and the operation index."""

from __future__ import annotations

from pathlib import Path

import pytest

from diffusellm.errors import SpecError
from diffusellm.pipeline.spec import AddParameter, RenameSymbol, load_spec_file, load_spec_text

VALID = """\
title: Rename get_verbose_flag to get_verbose_mode
description: free text
operations:
  - op: rename_symbol
    target: mypkg.helpers.get_verbose_flag
    new_name: get_verbose_mode
  - op: add_parameter
    target: mypkg.paths.resolve_root
    name: strict
    default: "False"
    kind: keyword_only
  - op: remove_parameter
    target: pkg.mod.func
    name: legacy
  - op: move_symbol
    target: pkg.a.helper
    to_module: pkg.b
acceptance:
  tests: [tests/test_helpers.py]
"""


def test_valid_spec_loads_every_operation() -> None:
    spec = load_spec_text(VALID)
    assert [op.op for op in spec.operations] == [
        "rename_symbol",
        "add_parameter",
        "remove_parameter",
        "move_symbol",
    ]
    assert isinstance(spec.operations[0], RenameSymbol)
    assert isinstance(spec.operations[1], AddParameter) and spec.operations[1].default == "False"
    assert spec.acceptance.tests == ["tests/test_helpers.py"]


def test_spec_from_fenced_block_in_issue_markdown() -> None:
    issue = "Please do this.\n\n```yaml\n" + VALID + "```\n\nThanks!"
    assert load_spec_text(issue).title.startswith("Rename")


def test_errors_name_field_and_operation_index() -> None:
    bad = (
        "title: x\noperations:\n  - op: rename_symbol\n    target: a.b\n"
        "  - op: add_parameter\n    target: a.f\n    name: ok\n    default: '('\n"
        "  - op: frobnicate\n    target: a.b\n"
    )
    with pytest.raises(SpecError) as info:
        load_spec_text(bad, source="issue.md")
    text = str(info.value)
    assert "operations[0] (rename_symbol).new_name" in text
    assert "operations[1] (add_parameter).default" in text
    assert "operations[2] (frobnicate)" in text and "rename_symbol" in text
    assert text.startswith("issue.md")


def test_unknown_field_and_non_mapping_rejected(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="operations\\[0\\] \\(rename_symbol\\).colour"):
        load_spec_text(
            "title: x\noperations:\n - op: rename_symbol\n   target: a.b\n"
            "   new_name: c\n   colour: red\n"
        )
    with pytest.raises(SpecError, match="YAML mapping"):
        load_spec_text("- just\n- a list\n")
    with pytest.raises(SpecError, match="not found"):
        load_spec_file(tmp_path / "missing.yaml")


def test_invalid_identifiers_rejected() -> None:
    with pytest.raises(SpecError, match="new_name"):
        load_spec_text(
            "title: x\noperations:\n - op: rename_symbol\n   target: a.b\n   new_name: 1abc\n"
        )
    with pytest.raises(SpecError, match="target"):
        load_spec_text(
            "title: x\noperations:\n - op: rename_symbol\n   target: 'a..b'\n   new_name: c\n"
        )


def test_keyword_names_rejected() -> None:
    with pytest.raises(SpecError, match="keyword"):
        load_spec_text(
            "title: x\noperations:\n - op: rename_symbol\n   target: a.b\n   new_name: class\n"
        )
    with pytest.raises(SpecError, match="keyword"):
        load_spec_text(
            "title: x\noperations:\n - op: add_parameter\n   target: a.b\n"
            "   name: lambda\n   default: '1'\n"
        )


def test_issue_body_with_crlf_line_endings() -> None:
    issue = "Please rename.\r\n\r\n```yaml\r\n" + VALID.replace("\n", "\r\n") + "```\r\n"
    assert len(load_spec_text(issue).operations) == 4


def test_example_specs_load() -> None:
    examples = Path(__file__).resolve().parents[2] / "examples" / "specs"
    for name in ("rename_verbose.yaml", "move_helper.yaml", "rename_method.yaml"):
        assert load_spec_file(examples / name).operations
    with pytest.raises(SpecError, match="operations"):
        load_spec_file(examples / "bad_unknown_op.yaml")
