"""Small pure helpers shared by the board, the service and the command line."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, timedelta

VERBOSE_ENV = "TASKBOARD_VERBOSE"
TRUE_VALUES = frozenset({"1", "true", "yes", "on"})

_RELATIVE = re.compile(r"^\+(\d+)([dw])$")
_NON_WORD = re.compile(r"[^a-z0-9]+")


def get_verbose_flag(env: Mapping[str, str]) -> bool:
    """Tell whether verbose output was asked for through the environment.

    Args:
        env: The environment to read, usually `os.environ`.

    Returns:
        True when `TASKBOARD_VERBOSE` holds a true-looking value such as "1" or "yes".
    """
    return env.get(VERBOSE_ENV, "").strip().lower() in TRUE_VALUES


def slugify(text: str) -> str:
    """Turn a task title into a short identifier made of lowercase words and dashes.

    Args:
        text: Any title, e.g. "Write the README!".

    Returns:
        The slug, e.g. "write-the-readme".

    Raises:
        ValueError: If the title has no letters or digits at all.
    """
    slug = _NON_WORD.sub("-", text.lower()).strip("-")
    if not slug:
        raise ValueError(f"cannot make a slug from {text!r}: it has no letters or digits")
    return slug


def parse_due_date(text: str, *, today: date) -> date:
    """Read a due date written as an ISO date, "today", "tomorrow" or an offset like "+3d".

    Args:
        text: What the user typed.
        today: The date relative offsets count from.

    Returns:
        The due date.

    Raises:
        ValueError: If the text is none of the accepted forms.
    """
    value = text.strip().lower()
    if value == "today":
        return today
    if value == "tomorrow":
        return today + timedelta(days=1)
    match = _RELATIVE.match(value)
    if match:
        amount = int(match.group(1))
        days = amount * 7 if match.group(2) == "w" else amount
        return today + timedelta(days=days)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"cannot read due date {text!r}: use YYYY-MM-DD, today, tomorrow, +Nd or +Nw"
        ) from None


def format_due(due: date | None, *, today: date) -> str:
    """Describe a due date relative to today, for listings.

    Args:
        due: The due date, or None when the task has none.
        today: The reference date.

    Returns:
        "" without a due date, otherwise e.g. "due today", "due in 3 days" or "overdue by 1 day".
    """
    if due is None:
        return ""
    days = (due - today).days
    if days == 0:
        return "due today"
    count = abs(days)
    unit = "day" if count == 1 else "days"
    return f"due in {count} {unit}" if days > 0 else f"overdue by {count} {unit}"
