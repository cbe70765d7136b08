"""The Forge protocol: what the app and the executor ask of GitHub (or of a local git repo)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from diffusellm.errors import DiffuseLLMError

TRUSTED_ROLES = frozenset({"admin", "maintain", "write"})
ReactionKind = Literal["+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"]
CheckConclusion = Literal["success", "failure", "neutral", "cancelled", "action_required"]
_MARKER = re.compile(r"<!-- diffusellm:job=([a-z]+-[0-9]+) -->")


class ForgeError(DiffuseLLMError):
    """The forge refused or failed a request. `retryable`: worth trying again later (network,
    rate limit, 5xx), as opposed to a refusal that will not change (404, 403 without a limit)."""

    def __init__(self, message: str, *, hint: str = "", retryable: bool = False) -> None:
        super().__init__(message, hint=hint)
        self.retryable = retryable


def work_key(issue_number: int | None, pr_number: int | None) -> str:
    """What a job works on, stable across retries: `issue-12` (or `pr-7` with no issue)."""
    if issue_number is not None:
        return f"issue-{issue_number}"
    if pr_number is not None:
        return f"pr-{pr_number}"
    return "local-0"


def job_marker(key: str) -> str:
    """The hidden line in every PR body and comment the bot writes for `key`."""
    return f"<!-- diffusellm:job={key} -->"


def marker_key(text: str) -> str | None:
    """The work key of the last bot marker in `text` (the bot puts its own last; anything
    quoted earlier in the body cannot take its place), if any."""
    found = _MARKER.findall(text)
    return str(found[-1]) if found else None


@dataclass(frozen=True)
class RepoMeta:
    """The repository as the forge describes it."""

    full_name: str
    default_branch: str
    clone_url: str


@dataclass(frozen=True)
class Issue:
    """An issue or pull request seen as an issue (GitHub numbers both alike)."""

    number: int
    title: str
    body: str
    author: str
    is_pull_request: bool
    state: str = "open"
    html_url: str = ""


@dataclass(frozen=True)
class Comment:
    """A comment on an issue or pull request."""

    id: int
    author: str
    author_type: str
    body: str
    created_at: dt.datetime
    updated_at: dt.datetime
    html_url: str = ""


@dataclass(frozen=True)
class PullRequest:
    """A pull request the bot opened (or found by its marker)."""

    number: int
    head_branch: str
    base_branch: str
    title: str
    body: str
    html_url: str
    draft: bool
    state: str


@dataclass(frozen=True)
class Permission:
    """A user's permission on the repository: the legacy level and the role name.

    https://docs.github.com/en/rest/collaborators/collaborators#get-repository-permissions-for-a-user
    `permission` folds maintain into write and triage into read; `role_name` keeps them apart and
    may be a custom role, which is why both are looked at.
    """

    permission: str
    role_name: str | None = None

    @property
    def can_write(self) -> bool:
        """write, maintain or admin."""
        return self.permission in TRUSTED_ROLES or (self.role_name or "") in TRUSTED_ROLES

    @property
    def label(self) -> str:
        """The most specific name for messages."""
        return self.role_name or self.permission


@dataclass(frozen=True)
class CheckRunOutput:
    """The visible part of a check run."""

    title: str
    summary: str
    text: str = ""


class Forge(Protocol):
    """One repository on a forge, as the executor and the triage use it."""

    @property
    def repo_full_name(self) -> str:
        """`owner/name` (or `local:/path`)."""
        ...

    @property
    def bot_login(self) -> str:
        """The login the bot writes as; only comments and PRs by it are the bot's own."""
        ...

    def repository(self) -> RepoMeta: ...

    def sync_checkout(self, dest: Path, branch: str | None = None) -> str:
        """Clone into (or fetch into) `dest` and check out `branch` (default: the default branch)
        as a local branch of the same name; returns its commit."""
        ...

    def push_branch(self, checkout: Path, local_branch: str, remote_branch: str) -> None:
        """Push `local_branch` of `checkout` to `remote_branch`, replacing the bot's own push."""
        ...

    def get_issue(self, number: int) -> Issue: ...

    def list_comments(self, number: int) -> list[Comment]: ...

    def post_comment(self, number: int, body: str) -> Comment: ...

    def edit_comment(self, comment_id: int, body: str) -> Comment: ...

    def add_reaction(self, number: int, content: ReactionKind) -> None:
        """React to the issue (or pull request) itself."""
        ...

    def add_comment_reaction(self, comment_id: int, content: ReactionKind) -> None: ...

    def find_pull_request(self, marker: str, head_branch: str | None = None) -> PullRequest | None:
        """The bot's own pull request whose body holds `marker` (from `head_branch` if given)."""
        ...

    def create_pull_request(
        self, *, title: str, body: str, head: str, base: str, draft: bool
    ) -> PullRequest: ...

    def update_pull_request(self, number: int, *, title: str, body: str) -> PullRequest: ...

    def get_pull_request(self, number: int) -> PullRequest: ...

    def upsert_check_run(
        self, *, name: str, head_sha: str, conclusion: CheckConclusion, output: CheckRunOutput,
        external_id: str,
    ) -> int:
        """Create the completed check run on `head_sha`, or update ours with that external id."""
        ...

    def get_default_branch_file(self, path: str) -> str | None:
        """A text file from the default branch; None when it does not exist."""
        ...

    def get_permission(self, username: str) -> Permission: ...
