"""Tests for the small pure helpers."""

from __future__ import annotations

from datetime import date

import pytest

from taskboard import helpers
from taskboard.helpers import format_due, parse_due_date, slugify


@pytest.mark.parametrize("value", ["1", "true", "YES", " on "])
def test_verbose_flag_is_on_for_true_looking_values(value: str) -> None:
    assert helpers.get_verbose_flag({"TASKBOARD_VERBOSE": value}) is True


@pytest.mark.parametrize("env", [{}, {"TASKBOARD_VERBOSE": ""}, {"TASKBOARD_VERBOSE": "0"}])
def test_verbose_flag_is_off_when_unset_or_false(env: dict[str, str]) -> None:
    assert helpers.get_verbose_flag(env) is False


def test_verbose_flag_ignores_other_variables() -> None:
    assert helpers.get_verbose_flag({"VERBOSE": "1", "TASKBOARD_DEBUG": "1"}) is False


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("Write the README!", "write-the-readme"),
        ("  Fix   bug #12 ", "fix-bug-12"),
        ("Q3 report: draft", "q3-report-draft"),
    ],
)
def test_slugify_keeps_lowercase_words_and_digits(title: str, slug: str) -> None:
    assert slugify(title) == slug


def test_slugify_refuses_titles_without_words() -> None:
    with pytest.raises(ValueError, match="no letters or digits"):
        slugify("?!")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("today", date(2024, 5, 6)),
        ("Tomorrow", date(2024, 5, 7)),
        ("+3d", date(2024, 5, 9)),
        ("+2w", date(2024, 5, 20)),
        ("2024-12-24", date(2024, 12, 24)),
    ],
)
def test_parse_due_date_accepts_documented_forms(text: str, expected: date, today: date) -> None:
    assert parse_due_date(text, today=today) == expected


@pytest.mark.parametrize("text", ["next week", "+3m", "2024-13-01", ""])
def test_parse_due_date_names_the_accepted_forms_on_error(text: str, today: date) -> None:
    with pytest.raises(ValueError, match="use YYYY-MM-DD, today, tomorrow"):
        parse_due_date(text, today=today)


@pytest.mark.parametrize(
    ("due", "expected"),
    [
        (None, ""),
        (date(2024, 5, 6), "due today"),
        (date(2024, 5, 7), "due in 1 day"),
        (date(2024, 5, 9), "due in 3 days"),
        (date(2024, 5, 5), "overdue by 1 day"),
        (date(2024, 4, 26), "overdue by 10 days"),
    ],
)
def test_format_due_describes_distance_from_today(
    due: date | None, expected: str, today: date
) -> None:
    assert format_due(due, today=today) == expected
