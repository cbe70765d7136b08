"""Local mode's forge: a plain git repository; comments, PRs and checks are only recorded."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from diffusellm.forge.base import (
    CheckConclusion,
    CheckRunOutput,
    Comment,
    ForgeError,
    Issue,
    Permission,
    PullRequest,
    ReactionKind,
    RepoMeta,
)
from diffusellm.jobs.model import FrozenRequest
from diffusellm.pipeline.workspace import git_out, open_repository, run_git


@dataclass
class LocalRecord:
    """What the bot would have written on a forge, kept for the job's result."""

    comments: list[Comment] = field(default_factory=list[Comment])
    pull_requests: list[PullRequest] = field(default_factory=list[PullRequest])
    check_runs: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])
    reactions: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class LocalForge:
    """A `Forge` over a local git repository: clone and push are real git, the rest is recorded.

    Pushing writes `refs/heads/<branch>` into the user's repository (never the checked-out one);
    the user's working tree is not touched.
    """

    def __init__(self, repo: Path, *, request: FrozenRequest | None = None,
                 bot_login: str = "diffusellm") -> None:
        info = open_repository(repo)
        self._root = info.root
        self._default = info.current_branch or info.default_branch or "main"
        self._request = request
        self._bot = bot_login
        self.record = LocalRecord()

    @property
    def repo_full_name(self) -> str:
        """`local:/abs/path`."""
        return f"local:{self._root}"

    @property
    def bot_login(self) -> str:
        """The name recorded comments are written under."""
        return self._bot

    def repository(self) -> RepoMeta:
        """The repository's path stands in for the clone URL."""
        return RepoMeta(full_name=self.repo_full_name, default_branch=self._default,
                        clone_url=str(self._root))

    def sync_checkout(self, dest: Path, branch: str | None = None) -> str:
        """Init or fetch `dest` from the local repository and check out `branch`."""
        branch = branch or self._default
        if not (dest / ".git").is_dir():
            dest.mkdir(parents=True, exist_ok=True)
            run_git(["init", "-q", "-b", self._default], dest)
        run_git(["fetch", "-q", "--no-tags", str(self._root),
                 f"+refs/heads/{branch}:refs/remotes/origin/{branch}"], dest)
        run_git(["checkout", "-q", "-f", "-B", branch, f"refs/remotes/origin/{branch}"], dest)
        run_git(["clean", "-q", "-ffdx"], dest)
        return git_out(["rev-parse", "HEAD"], dest)

    def push_branch(self, checkout: Path, local_branch: str, remote_branch: str) -> None:
        """Force-update `remote_branch` in the user's repository (never the checked-out one)."""
        if remote_branch == open_repository(self._root).current_branch:
            raise ForgeError(f"refusing to push to the checked-out branch {remote_branch!r}",
                             hint="use a branch prefix such as diffusellm/")
        run_git(["push", "-q", "--no-verify", str(self._root),
                 f"+refs/heads/{local_branch}:refs/heads/{remote_branch}"], checkout)

    def get_issue(self, number: int) -> Issue:
        """The request given to this forge stands in for the issue."""
        req = self._request
        return Issue(number=number, title=req.title if req else "", body=req.body if req else "",
                     author=req.sender if req else "", is_pull_request=False)

    def list_comments(self, number: int) -> list[Comment]:
        """Comments recorded so far (local mode has no others)."""
        return list(self.record.comments)

    def post_comment(self, number: int, body: str) -> Comment:
        """Record a comment."""
        now = _now()
        comment = Comment(id=len(self.record.comments) + 1, author=self._bot, author_type="Bot",
                          body=body, created_at=now, updated_at=now)
        self.record.comments.append(comment)
        return comment

    def edit_comment(self, comment_id: int, body: str) -> Comment:
        """Replace a recorded comment's body."""
        for i, old in enumerate(self.record.comments):
            if old.id == comment_id:
                self.record.comments[i] = replace(old, body=body, updated_at=_now())
                return self.record.comments[i]
        raise ForgeError(f"no comment {comment_id} to edit")

    def add_reaction(self, number: int, content: ReactionKind) -> None:
        """Record a reaction."""
        self.record.reactions.append({"on": "issue", "content": content})

    def add_comment_reaction(self, comment_id: int, content: ReactionKind) -> None:
        """Record a reaction."""
        self.record.reactions.append({"on": f"comment-{comment_id}", "content": content})

    def find_pull_request(self, marker: str, head_branch: str | None = None) -> PullRequest | None:
        """A recorded PR with `marker` (and `head_branch` when given)."""
        for pr in self.record.pull_requests:
            if marker in pr.body and head_branch in (None, pr.head_branch):
                return pr
        return None

    def create_pull_request(self, *, title: str, body: str, head: str, base: str,
                            draft: bool) -> PullRequest:
        """Record a PR."""
        pr = PullRequest(number=len(self.record.pull_requests) + 1, head_branch=head,
                         base_branch=base, title=title, body=body, html_url="", draft=draft,
                         state="open")
        self.record.pull_requests.append(pr)
        return pr

    def update_pull_request(self, number: int, *, title: str, body: str) -> PullRequest:
        """Update a recorded PR."""
        pr = self.get_pull_request(number)
        new = replace(pr, title=title, body=body)
        self.record.pull_requests[number - 1] = new
        return new

    def get_pull_request(self, number: int) -> PullRequest:
        """A recorded PR."""
        if not 1 <= number <= len(self.record.pull_requests):
            raise ForgeError(f"no pull request {number} in local mode")
        return self.record.pull_requests[number - 1]

    def upsert_check_run(self, *, name: str, head_sha: str, conclusion: CheckConclusion,
                         output: CheckRunOutput, external_id: str) -> int:
        """Record (or replace) a check run."""
        run = {"name": name, "head_sha": head_sha, "conclusion": conclusion,
               "external_id": external_id, **asdict(output)}
        runs = self.record.check_runs
        for i, old in enumerate(runs):
            if (old["head_sha"], old["external_id"]) == (head_sha, external_id):
                runs[i] = run
                return i + 1
        runs.append(run)
        return len(runs)

    def get_default_branch_file(self, path: str) -> str | None:
        """`git show <default>:path`, None when absent."""
        proc = run_git(["show", f"refs/heads/{self._default}:{path}"], self._root, check=False)
        return proc.stdout.decode("utf-8", "replace") if proc.returncode == 0 else None

    def get_permission(self, username: str) -> Permission:
        """The local user owns the repository."""
        return Permission(permission="admin", role_name="admin")

    def result(self) -> dict[str, Any]:
        """The record as JSON-ready data for the job's result."""
        return {
            "comments": [{"id": c.id, "body": c.body} for c in self.record.comments],
            "pull_requests": [asdict(p) for p in self.record.pull_requests],
            "check_runs": list(self.record.check_runs),
            "reactions": list(self.record.reactions),
        }
