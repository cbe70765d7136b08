"""Tests for identifier naming: classification, conformance and conversion."""

from __future__ import annotations

import pytest

from diffusellm.pipeline.understand.style.infer import conforms, convention_of, convert_name
from diffusellm.pipeline.understand.style.naming import Identifier, split_words, summarize
from diffusellm.pipeline.understand.style.profile import NamingConvention


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("get_verbose_flag", "snake_case"),
        ("_private_helper", "snake_case"),
        ("utf8_decode", "snake_case"),
        ("getVerboseFlag", "camelCase"),
        ("getHTTPResponse", "camelCase"),
        ("RecordStore", "PascalCase"),
        ("HTTPServer", "PascalCase"),
        ("_Base64Encoder", "PascalCase"),
        ("MAX_RETRIES", "UPPER_CASE"),
        ("DEBUG", "UPPER_CASE"),
        ("run", "lowercase"),
        ("visit_ClassDef", "mixed"),
        ("Get_Value", "mixed"),
        ("_", "mixed"),
    ],
)
def test_convention_of_classifies_identifiers(name: str, expected: NamingConvention) -> None:
    assert convention_of(name) == expected


@pytest.mark.parametrize(
    ("name", "convention", "expected"),
    [
        ("load_file", "snake_case", True),
        ("loadFile", "snake_case", False),
        ("load", "snake_case", True),
        ("load", "camelCase", True),
        ("load", "PascalCase", False),
        ("loadFile", "camelCase", True),
        ("LoadFile", "camelCase", False),
        ("T", "PascalCase", True),
        ("MAX_SIZE", "UPPER_CASE", True),
        ("max_size", "UPPER_CASE", False),
        ("__init__", "camelCase", True),
        ("visit_ClassDef", "mixed", True),
    ],
)
def test_conforms(name: str, convention: NamingConvention, expected: bool) -> None:
    assert conforms(name, convention) is expected


@pytest.mark.parametrize(
    ("name", "convention", "expected"),
    [
        ("get_verbose_flag", "camelCase", "getVerboseFlag"),
        ("get_verbose_flag", "PascalCase", "GetVerboseFlag"),
        ("getVerboseFlag", "snake_case", "get_verbose_flag"),
        ("getHTTPResponse", "snake_case", "get_http_response"),
        ("HTTPServer", "snake_case", "http_server"),
        ("maxRetries", "UPPER_CASE", "MAX_RETRIES"),
        ("_private_value", "camelCase", "_privateValue"),
        ("base64_encoder", "PascalCase", "Base64Encoder"),
        ("Record_Store", "lowercase", "recordstore"),
        ("__init__", "camelCase", "__init__"),
        ("anyName_Here", "mixed", "anyName_Here"),
    ],
)
def test_convert_name(name: str, convention: NamingConvention, expected: str) -> None:
    converted = convert_name(name, convention)
    assert converted == expected
    assert conforms(converted, convention)


def test_split_words_keeps_acronyms_and_digits() -> None:
    assert split_words("parseX11DisplayHTTPHeader_v2") == ["parse", "X11", "Display", "HTTP",
                                                            "Header", "v2"]


def _functions(*names: str) -> list[Identifier]:
    return [Identifier(kind="function", name=n, file="m.py", line=1, convention=convention_of(n))
            for n in names]


def test_summary_ignores_one_word_names_and_reports_share() -> None:
    identifiers = _functions("run", "load", "loadFile", "saveFile", "save_file")
    summary = summarize("function", identifiers)
    assert summary.convention == "camelCase"
    assert summary.count == 5
    assert summary.share == pytest.approx(4 / 5)


def test_summary_without_majority_is_mixed_and_without_evidence_is_pep8() -> None:
    assert summarize("function", _functions("loadFile", "save_file")).convention == "mixed"
    assert summarize("function", _functions("run", "stop")).convention == "snake_case"
    assert summarize("class", []).convention == "PascalCase"
