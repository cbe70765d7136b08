"""`diffusellm plan` end to end on a real repository: the spec or the question, the plan, the located code,
and nothing changed in the checkout or in the repository's git state."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.cli.test_main import cli
from tests.conftest import git, make_repo

TEXT = '''\
"""Text helpers."""


def slugify(text: str) -> str:
    """Lower-case words joined by dashes."""
    return "-".join(text.lower().split())


def title_case(text: str) -> str:
    """Each word capitalised."""
    return " ".join(w.capitalize() for w in text.split())
'''
FILES = {
    "pkg/__init__.py": "",
    "pkg/text.py": TEXT,
    "tests/test_text.py": 'from pkg.text import slugify\n\n\ndef test_slugify() -> None:\n    assert slugify("A b") == "a-b"\n',
}
FAST = ("--set", "generation.localise=overlap")


def _state_of(repo: Path) -> dict[str, str]:
    """Everything a dry run must leave as it was: files, HEAD, refs, index, worktrees, stash, config."""
    files = sorted(p for p in repo.rglob("*") if p.is_file() and ".git" not in p.relative_to(repo).parts)
    digest = hashlib.sha256(b"".join(str(p).encode() + p.read_bytes() for p in files)).hexdigest()
    return {
        "files": digest,
        "status": git(repo, "status", "--porcelain", "--ignored"),
        "head": git(repo, "rev-parse", "HEAD") + git(repo, "symbolic-ref", "HEAD"),
        "refs": git(repo, "for-each-ref"),
        "index": hashlib.sha256((repo / ".git" / "index").read_bytes()).hexdigest(),
        "worktrees": git(repo, "worktree", "list", "--porcelain"),
        "stash": git(repo, "stash", "list"),
        "config": (repo / ".git" / "config").read_text(encoding="utf-8"),
    }


def test_plan_shows_the_spec_plan_and_located_code_and_changes_nothing(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", FILES)
    (repo / "notes.txt").write_text("an untracked file stays untracked\n", encoding="utf-8")
    issue = tmp_path / "issue.md"
    issue.write_text("# Naming\n\nThe helper `slugify` should be called `make_slug`.\n", encoding="utf-8")
    before = _state_of(repo)
    done = cli(tmp_path / "state", "plan", str(issue), "--repo", str(repo), "--json", *FAST)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["question"] is None
    rename = {"op": "rename_symbol", "target": "pkg.text.slugify", "new_name": "make_slug"}
    assert data["spec"]["operations"] == [rename]
    assert data["plan"]["operations"] == [rename] and data["plan"]["origin"] == "spec"
    assert data["located"]["files"][0]["path"] == "pkg/text.py"
    first = data["located"]["functions"][0]
    assert (first["qualname"], first["line"]) == ("pkg.text.slugify", 4) and first["reasons"]
    assert _state_of(repo) == before


def test_plan_in_words_for_people(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", FILES)
    issue = tmp_path / "issue.md"
    issue.write_text("Please rename `title_case` to `capitalise_words`.\n", encoding="utf-8")
    before = _state_of(repo)
    done = cli(tmp_path / "state", "plan", str(issue), "--repo", str(repo), *FAST)
    assert done.returncode == 0, done.stderr
    assert "rename_symbol pkg.text.title_case (new_name='capitalise_words')" in done.stdout
    assert "located functions" in done.stdout and "pkg/text.py:9" in done.stdout
    assert "reading the issue and planning" in done.stderr  # phase progress goes to stderr
    assert _state_of(repo) == before


def test_plan_of_a_vague_issue_is_the_question_the_bot_would_ask(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", FILES)
    issue = tmp_path / "issue.md"
    issue.write_text("Everything about this is confusing, please improve it.\n", encoding="utf-8")
    before = _state_of(repo)
    done = cli(tmp_path / "state", "plan", str(issue), "--repo", str(repo), "--json", *FAST)
    assert done.returncode == 2, done.stderr
    data = json.loads(done.stdout)
    assert data["question"] and data["spec"] is None and data["plan"] is None
    assert set(data) >= {"spec", "plan", "question", "located"}
    assert _state_of(repo) == before
