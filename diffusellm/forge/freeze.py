"""Issue snapshot: clean and freeze the request text at trigger time, hashed to spot edits."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Sequence

from diffusellm.forge.base import Comment
from diffusellm.jobs.model import FrozenRequest

_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
# Characters that render as nothing yet carry text: variation selectors (also used to smuggle
# bytes), the combining grapheme joiner and Hangul fillers. Format characters (category Cf:
# zero-width spaces and joiners, bidi embeddings/overrides/isolates, word joiner, BOM, tag
# characters, soft hyphen) are removed by category.
_INVISIBLE_RANGES = ((0xFE00, 0xFE0F), (0xE0100, 0xE01EF), (0x034F, 0x034F), (0x115F, 0x1160),
                     (0x3164, 0x3164), (0xFFA0, 0xFFA0), (0x180B, 0x180F))


def _invisible(ch: str) -> bool:
    if unicodedata.category(ch) == "Cf":
        return True
    code = ord(ch)
    return any(lo <= code <= hi for lo, hi in _INVISIBLE_RANGES)


def strip_invisible(text: str) -> str:
    """`text` without zero-width, bidi-control, tag and other invisible characters."""
    return "".join(ch for ch in text if not _invisible(ch))


def strip_html_comments(text: str) -> str:
    """`text` without `<!-- ... -->` (an unclosed one hides the rest on GitHub, so it goes too);
    repeated until none is left, since removing one can join the pieces of another."""
    while True:
        stripped = _HTML_COMMENT.sub("", text)
        if stripped == text:
            return text
        text = stripped


def clean_text(text: str) -> str:
    """What a reader of the rendered issue sees: invisible characters first (so they cannot split
    a comment opener), then HTML comments; CRLF becomes LF."""
    return strip_html_comments(strip_invisible(text.replace("\r\n", "\n")))


def text_sha256(title: str, body: str, comments: Sequence[str]) -> str:
    """sha256 over the cleaned title, body and trusted comments (JSON, so no field can run into
    another)."""
    canonical = json.dumps([clean_text(title), clean_text(body), [clean_text(c) for c in comments]],
                           ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def trusted_comments(
    comments: Sequence[Comment],
    *,
    is_trusted: Callable[[str], bool],
    bot_login: str,
    command: str,
) -> list[str]:
    """Bodies of comments by trusted people, oldest first: not the bot's own, not commands."""
    kept: list[str] = []
    for comment in comments:
        if comment.author.lower() == bot_login.lower():
            continue
        if clean_text(comment.body).lstrip().startswith(command):
            continue
        if is_trusted(comment.author):
            kept.append(comment.body)
    return kept


def freeze(
    *,
    repo_full_name: str,
    title: str,
    body: str,
    comments: Sequence[str] = (),
    installation_id: int | None = None,
    issue_number: int | None = None,
    pr_number: int | None = None,
    instructions: str = "",
    sender: str = "",
) -> FrozenRequest:
    """The request as the job will see it: cleaned texts and their hash."""
    cleaned = [clean_text(c) for c in comments]
    return FrozenRequest(
        repo_full_name=repo_full_name, installation_id=installation_id,
        issue_number=issue_number, pr_number=pr_number,
        title=clean_text(title), body=clean_text(body), trusted_comments=cleaned,
        instructions=clean_text(instructions), sender=sender,
        text_sha256=text_sha256(title, body, comments),
    )


def still_matches(request: FrozenRequest, title: str, body: str, comments: Sequence[str]) -> bool:
    """Whether the issue read now hashes like the frozen one.

    `comments` are today's trusted comments, oldest first; those after the frozen ones were
    written after the trigger and do not count (no clock comparison, so no clock skew), while an
    edited, deleted or newly trusted earlier comment changes the hash.
    """
    frozen_count = len(request.trusted_comments)
    return text_sha256(title, body, comments[:frozen_count]) == request.text_sha256
