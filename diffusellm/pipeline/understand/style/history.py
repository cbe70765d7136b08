"""Phase 1 style profiling: the commit-message convention of the git history."""

from __future__ import annotations

import re
import subprocess
import unicodedata
from collections import Counter
from pathlib import Path

from diffusellm.pipeline.understand.style.profile import CommitConvention

_CONVENTIONAL = re.compile(
    r"^(feat|feature|fix|bugfix|hotfix|docs?|style|refactor|perf|tests?|build|ci|chore|revert"
    r"|deps|release|security)(\([^)\n]*\))?!?: \S",
    re.IGNORECASE,
)
_GITMOJI_CODE = re.compile(r"^:[a-z0-9_+-]+:")
_BRACKETED = re.compile(r"^\[[^\]\n]+\]\s*\S")
_STRUCTURED: tuple[CommitConvention, ...] = ("conventional", "gitmoji", "bracketed")
_STRUCTURED_SHARE = 0.4  # histories mix styles (bots, reverts); a steady 40% sets the tone


def recent_subjects(root: Path, limit: int = 200) -> list[str]:
    """Subjects of the last `limit` non-merge commits, newest first; empty without git history."""
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "log", f"-n{limit}", "--no-merges", "--format=%s"],
            capture_output=True, timeout=60, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    if done.returncode != 0:
        return []
    lines = done.stdout.decode("utf-8", "replace").splitlines()
    return [line.strip() for line in lines if line.strip()]


def commit_style(subject: str) -> CommitConvention:
    """The convention one subject follows; any unstructured subject counts as `imperative`."""
    if _CONVENTIONAL.match(subject):
        return "conventional"
    first = subject[:1]
    if _GITMOJI_CODE.match(subject) or (first and unicodedata.category(first) == "So"):
        return "gitmoji"
    if _BRACKETED.match(subject):
        return "bracketed"
    return "imperative"


def commit_convention(subjects: list[str]) -> tuple[CommitConvention, list[str]]:
    """The history's convention and up to five recent subjects that follow it."""
    if not subjects:
        return "none", []
    votes = Counter(commit_style(s) for s in subjects)
    top = max(_STRUCTURED, key=lambda style: votes[style])
    convention = top if votes[top] >= _STRUCTURED_SHARE * len(subjects) else "imperative"
    examples = [s for s in subjects if commit_style(s) == convention][:5]
    return convention, examples or subjects[:5]
