"""FakeForge: an in-memory Forge for triage unit tests (roles, issues, comments; no git)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from pathlib import Path

from diffusellm.forge.base import (
    CheckConclusion,
    CheckRunOutput,
    Comment,
    Issue,
    Permission,
    PullRequest,
    ReactionKind,
    RepoMeta,
)

LEGACY = {"admin": "admin", "maintain": "write", "write": "write", "triage": "read",
          "read": "read"}


@dataclass
class FakeForge:
    """Holds what the bot read and wrote; permission lookups are counted."""

    repo_full_name: str = "octo/repo"
    bot_login: str = "diffusellm[bot]"
    roles: dict[str, str] = field(default_factory=dict[str, str])
    issues: dict[int, Issue] = field(default_factory=dict[int, Issue])
    comments: dict[int, list[Comment]] = field(default_factory=dict[int, list[Comment]])
    files: dict[str, str] = field(default_factory=dict[str, str])
    reactions: list[tuple[str, int, str]] = field(default_factory=list[tuple[str, int, str]])
    permission_lookups: list[str] = field(default_factory=list[str])
    _next: int = 100

    def repository(self) -> RepoMeta:
        return RepoMeta(self.repo_full_name, "main", "https://example.invalid/x.git")

    def sync_checkout(self, dest: Path, branch: str | None = None) -> str:
        raise NotImplementedError("FakeForge has no git")

    def push_branch(self, checkout: Path, local_branch: str, remote_branch: str) -> None:
        raise NotImplementedError("FakeForge has no git")

    def get_issue(self, number: int) -> Issue:
        return self.issues[number]

    def list_comments(self, number: int) -> list[Comment]:
        return list(self.comments.get(number, []))

    def add_comment(self, number: int, author: str, body: str,
                    author_type: str = "User") -> Comment:
        """Test set-up: someone comments."""
        self._next += 1
        stamp = dt.datetime.now(dt.UTC)
        comment = Comment(self._next, author, author_type, body, stamp, stamp)
        self.comments.setdefault(number, []).append(comment)
        return comment

    def post_comment(self, number: int, body: str) -> Comment:
        return self.add_comment(number, self.bot_login, body, "Bot")

    def edit_comment(self, comment_id: int, body: str) -> Comment:
        for items in self.comments.values():
            for i, old in enumerate(items):
                if old.id == comment_id:
                    items[i] = replace(old, body=body)
                    return items[i]
        raise KeyError(comment_id)

    def bot_comments(self, number: int) -> list[str]:
        """Bodies of the bot's comments on `number`."""
        return [c.body for c in self.comments.get(number, []) if c.author == self.bot_login]

    def add_reaction(self, number: int, content: ReactionKind) -> None:
        self.reactions.append(("issue", number, content))

    def add_comment_reaction(self, comment_id: int, content: ReactionKind) -> None:
        self.reactions.append(("comment", comment_id, content))

    def find_pull_request(self, marker: str, head_branch: str | None = None) -> PullRequest | None:
        return None

    def create_pull_request(self, *, title: str, body: str, head: str, base: str,
                            draft: bool) -> PullRequest:
        raise NotImplementedError

    def update_pull_request(self, number: int, *, title: str, body: str) -> PullRequest:
        raise NotImplementedError

    def get_pull_request(self, number: int) -> PullRequest:
        raise NotImplementedError

    def upsert_check_run(self, *, name: str, head_sha: str, conclusion: CheckConclusion,
                         output: CheckRunOutput, external_id: str) -> int:
        raise NotImplementedError

    def get_default_branch_file(self, path: str) -> str | None:
        return self.files.get(path)

    def get_permission(self, username: str) -> Permission:
        self.permission_lookups.append(username)
        role = self.roles.get(username)
        if role is None:
            return Permission("none")
        return Permission(LEGACY[role], role)
