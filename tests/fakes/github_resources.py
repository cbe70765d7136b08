"""GitHub double, data side: in-memory records and their JSON, shaped from GitHub's own examples."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fakes.openapi_check import OpenApiContract


def now() -> dt.datetime:
    """UTC now, to the second (GitHub's timestamps have no fractions)."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def iso(when: dt.datetime) -> str:
    """`2024-01-02T03:04:05Z`."""
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class User:
    """An account: a person or a bot."""

    login: str
    id: int
    type: str = "User"


@dataclass
class PullRec:
    """The pull-request side of an issue record."""

    head: str
    base: str
    draft: bool
    head_sha: str = ""


@dataclass
class IssueRec:
    """An issue, or a pull request when `pull` is set (they share numbers)."""

    number: int
    id: int
    title: str
    body: str
    user: str
    labels: list[str] = field(default_factory=list[str])
    state: str = "open"
    created_at: dt.datetime = field(default_factory=now)
    updated_at: dt.datetime = field(default_factory=now)
    pull: PullRec | None = None


@dataclass
class CommentRec:
    """A comment on an issue or pull request."""

    id: int
    number: int
    user: str
    body: str
    created_at: dt.datetime = field(default_factory=now)
    updated_at: dt.datetime = field(default_factory=now)


@dataclass
class CheckRunRec:
    """A check run."""

    id: int
    name: str
    head_sha: str
    status: str
    conclusion: str | None
    external_id: str
    output: dict[str, Any]
    started_at: dt.datetime = field(default_factory=now)
    completed_at: dt.datetime | None = None


@dataclass
class RepoRec:
    """A repository: its bare git repository on disk and everything around it."""

    owner: str
    name: str
    id: int
    bare: Path
    default_branch: str
    roles: dict[str, str] = field(default_factory=dict[str, str])
    issues: dict[int, IssueRec] = field(default_factory=dict[int, IssueRec])
    comments: dict[int, CommentRec] = field(default_factory=dict[int, CommentRec])
    check_runs: dict[int, CheckRunRec] = field(default_factory=dict[int, CheckRunRec])
    reactions: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])
    labels: dict[str, int] = field(default_factory=dict[str, int])

    @property
    def full_name(self) -> str:
        """`owner/name`."""
        return f"{self.owner}/{self.name}"


class Shapes:
    """Builds response JSON from the description's examples, rebased on the double's URL."""

    def __init__(self, contract: OpenApiContract, base: str) -> None:
        self._examples: dict[str, Any] = contract.doc["components"]["examples"]
        self.base = base

    def _example(self, name: str) -> Any:
        text = json.dumps(self._examples[name]["value"])
        text = text.replace("https://api.github.com", self.base)
        text = text.replace("https://github.com", self.base)
        return json.loads(text)

    def user(self, user: User) -> dict[str, Any]:
        """simple-user."""
        data = copy.deepcopy(self._example("issue")["user"])
        data.update(login=user.login, id=user.id, type=user.type, site_admin=False,
                    node_id=_node("U", user.id))
        for key, value in list(data.items()):
            if key.endswith("url") and isinstance(value, str):
                data[key] = value.replace("/octocat", f"/{user.login}")
        return data

    def repo(self, repo: RepoRec, owner: User) -> dict[str, Any]:
        """full-repository."""
        data = self._example("full-repository")
        text = json.dumps(data).replace("octocat/Hello-World", repo.full_name)
        data = json.loads(text)
        data.update(id=repo.id, node_id=_node("R", repo.id), name=repo.name,
                    full_name=repo.full_name, owner=self.user(owner), private=True,
                    default_branch=repo.default_branch, has_discussions=False,
                    clone_url=f"{self.base}/{repo.full_name}.git",
                    url=f"{self.base}/repos/{repo.full_name}",
                    html_url=f"{self.base}/{repo.full_name}", language="Python")
        for key in ("organization", "parent", "source", "template_repository"):
            data.pop(key, None)
        return data

    def issue(self, repo: RepoRec, issue: IssueRec, author: User) -> dict[str, Any]:
        """issue (with `pull_request` links for a PR)."""
        data = self._example("issue")
        api = f"{self.base}/repos/{repo.full_name}/issues/{issue.number}"
        data.update(
            id=issue.id, node_id=_node("I", issue.id), number=issue.number, title=issue.title,
            body=issue.body, user=self.user(author), state=issue.state, url=api,
            repository_url=f"{self.base}/repos/{repo.full_name}", comments_url=f"{api}/comments",
            labels_url=f"{api}/labels{{/name}}", events_url=f"{api}/events",
            html_url=f"{self.base}/{repo.full_name}/issues/{issue.number}",
            labels=[self.label(repo, n) for n in issue.labels], assignee=None, assignees=[],
            milestone=None, locked=False, closed_at=None, closed_by=None,
            comments=sum(1 for c in repo.comments.values() if c.number == issue.number),
            created_at=iso(issue.created_at), updated_at=iso(issue.updated_at),
            author_association="OWNER" if author.login == repo.owner else "NONE",
        )
        data.pop("pull_request", None)
        if issue.pull is not None:
            web = f"{self.base}/{repo.full_name}/pull/{issue.number}"
            data["pull_request"] = {"url": f"{self.base}/repos/{repo.full_name}/pulls/"
                                           f"{issue.number}", "html_url": web,
                                    "diff_url": f"{web}.diff", "patch_url": f"{web}.patch",
                                    "merged_at": None}
        return data

    def label(self, repo: RepoRec, name: str) -> dict[str, Any]:
        """label."""
        label_id = repo.labels.setdefault(name, 9000 + len(repo.labels))
        return {"id": label_id, "node_id": _node("L", label_id), "name": name,
                "url": f"{self.base}/repos/{repo.full_name}/labels/{name}",
                "description": None, "color": "ededed", "default": False}

    def comment(self, repo: RepoRec, comment: CommentRec, author: User) -> dict[str, Any]:
        """issue-comment."""
        data = self._example("issue-comment")
        data.update(
            id=comment.id, node_id=_node("C", comment.id), body=comment.body,
            user=self.user(author), created_at=iso(comment.created_at),
            updated_at=iso(comment.updated_at),
            url=f"{self.base}/repos/{repo.full_name}/issues/comments/{comment.id}",
            html_url=f"{self.base}/{repo.full_name}/issues/{comment.number}#issuecomment-"
                     f"{comment.id}",
            issue_url=f"{self.base}/repos/{repo.full_name}/issues/{comment.number}",
            author_association="NONE" if author.type == "Bot" else "COLLABORATOR",
        )
        return data

    def reaction(self, reaction_id: int, content: str, author: User) -> dict[str, Any]:
        """reaction."""
        return {"id": reaction_id, "node_id": _node("E", reaction_id), "user": self.user(author),
                "content": content, "created_at": iso(now())}

    def pull(self, repo: RepoRec, issue: IssueRec, author: User, owner: User,
             *, simple: bool = False) -> dict[str, Any]:
        """pull-request (or pull-request-simple for lists)."""
        assert issue.pull is not None
        data = self._example("pull-request")
        api = f"{self.base}/repos/{repo.full_name}"
        web = f"{self.base}/{repo.full_name}/pull/{issue.number}"
        repo_json = self.repo(repo, owner)
        data.update(
            id=issue.id, node_id=_node("P", issue.id), number=issue.number, title=issue.title,
            body=issue.body, user=self.user(author), state=issue.state, draft=issue.pull.draft,
            url=f"{api}/pulls/{issue.number}", html_url=web, diff_url=f"{web}.diff",
            patch_url=f"{web}.patch", issue_url=f"{api}/issues/{issue.number}",
            commits_url=f"{api}/pulls/{issue.number}/commits",
            review_comments_url=f"{api}/pulls/{issue.number}/comments",
            review_comment_url=f"{api}/pulls/comments{{/number}}",
            comments_url=f"{api}/issues/{issue.number}/comments",
            statuses_url=f"{api}/statuses/{issue.pull.head_sha}",
            labels=[self.label(repo, n) for n in issue.labels], assignee=None, assignees=[],
            requested_reviewers=[], requested_teams=[], milestone=None, locked=False,
            closed_at=None, merged_at=None, merge_commit_sha=None, auto_merge=None,
            created_at=iso(issue.created_at), updated_at=iso(issue.updated_at),
            author_association="NONE", active_lock_reason=None,
            head=self._branch(issue.pull.head, issue.pull.head_sha, repo_json, owner),
            base=self._branch(issue.pull.base, "", repo_json, owner),
            merged=False, mergeable=None, mergeable_state="unknown", merged_by=None,
            comments=0, review_comments=0, commits=1, additions=1, deletions=1, changed_files=1,
            maintainer_can_modify=False, rebaseable=None,
        )
        data["_links"] = {k: {"href": v} for k, v in {
            "self": data["url"], "html": web, "issue": data["issue_url"],
            "comments": data["comments_url"], "review_comments": data["review_comments_url"],
            "review_comment": data["review_comment_url"], "commits": data["commits_url"],
            "statuses": data["statuses_url"]}.items()}
        if simple:
            for key in ("merged", "mergeable", "mergeable_state", "merged_by", "comments",
                        "review_comments", "commits", "additions", "deletions", "changed_files",
                        "maintainer_can_modify", "rebaseable"):
                data.pop(key, None)
        return data

    def _branch(self, ref: str, sha: str, repo_json: dict[str, Any],
                owner: User) -> dict[str, Any]:
        return {"label": f"{owner.login}:{ref}", "ref": ref, "sha": sha or "0" * 40,
                "user": self.user(owner), "repo": repo_json}

    def check_run(self, repo: RepoRec, run: CheckRunRec, app: dict[str, Any]) -> dict[str, Any]:
        """check-run."""
        data = self._example("check-run")
        data.update(
            id=run.id, node_id=_node("K", run.id), name=run.name, head_sha=run.head_sha,
            status=run.status, conclusion=run.conclusion, external_id=run.external_id,
            url=f"{self.base}/repos/{repo.full_name}/check-runs/{run.id}",
            html_url=f"{self.base}/{repo.full_name}/runs/{run.id}", details_url=None,
            started_at=iso(run.started_at),
            completed_at=iso(run.completed_at) if run.completed_at else None,
            output={"title": run.output.get("title"), "summary": run.output.get("summary"),
                    "text": run.output.get("text"), "annotations_count": 0,
                    "annotations_url": f"{self.base}/repos/{repo.full_name}/check-runs/"
                                       f"{run.id}/annotations"},
            check_suite={"id": 1}, app=app, pull_requests=[],
        )
        return data

    def app(self, app_id: int, slug: str, owner: User) -> dict[str, Any]:
        """integration."""
        data = self._example("integration")
        data.update(id=app_id, slug=slug, name=slug, owner=self.user(owner),
                    html_url=f"{self.base}/apps/{slug}",
                    permissions={"metadata": "read", "contents": "write", "issues": "write",
                                 "pull_requests": "write", "checks": "write"},
                    events=["issues", "issue_comment", "pull_request_review"])
        return data

    def installation(self, installation_id: int, app_id: int, slug: str,
                     account: User) -> dict[str, Any]:
        """installation."""
        data = self._example("installation")
        data.update(id=installation_id, app_id=app_id, app_slug=slug, account=self.user(account),
                    target_id=account.id, target_type="User", repository_selection="selected",
                    access_tokens_url=f"{self.base}/app/installations/{installation_id}/"
                                      "access_tokens",
                    repositories_url=f"{self.base}/installation/repositories",
                    html_url=f"{self.base}/settings/installations/{installation_id}")
        return data

    def token(self, value: str, expires: dt.datetime, permissions: dict[str, str],
              repos: list[dict[str, Any]]) -> dict[str, Any]:
        """installation-token."""
        return {"token": value, "expires_at": iso(expires), "permissions": permissions,
                "repository_selection": "selected", "repositories": repos}

    def permission(self, role: str, user: User) -> dict[str, Any]:
        """repository-collaborator-permission (legacy level plus role name)."""
        legacy = {"admin": "admin", "maintain": "write", "write": "write", "triage": "read",
                  "read": "read"}.get(role, "none")
        collaborator = {**self.user(user), "role_name": role}
        return {"permission": legacy, "role_name": role, "user": collaborator}

    def content(self, repo: RepoRec, path: str, data: bytes, sha: str) -> dict[str, Any]:
        """content-file."""
        api = f"{self.base}/repos/{repo.full_name}/contents/{path}"
        web = f"{self.base}/{repo.full_name}/blob/{repo.default_branch}/{path}"
        git = f"{self.base}/repos/{repo.full_name}/git/blobs/{sha}"
        return {"type": "file", "encoding": "base64", "size": len(data),
                "name": path.rsplit("/", 1)[-1], "path": path,
                "content": base64.encodebytes(data).decode("ascii"), "sha": sha, "url": api,
                "git_url": git, "html_url": web, "download_url": f"{self.base}/raw/{path}",
                "_links": {"self": api, "git": git, "html": web}}

    def ref(self, repo: RepoRec, ref: str, sha: str) -> dict[str, Any]:
        """git-ref."""
        return {"ref": ref, "node_id": _node("F", int(sha[:6], 16)),
                "url": f"{self.base}/repos/{repo.full_name}/git/{ref}",
                "object": {"type": "commit", "sha": sha,
                           "url": f"{self.base}/repos/{repo.full_name}/git/commits/{sha}"}}


def _node(kind: str, number: int) -> str:
    return base64.b64encode(f"{kind}{number}".encode()).decode()


def blob_sha(data: bytes) -> str:
    """git's blob id for `data`."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # noqa: S324 - git's id
