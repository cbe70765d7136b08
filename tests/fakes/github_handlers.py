"""GitHub double, behaviour side: a handler per OpenAPI operation the bot uses, over its state."""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlencode

from tests.fakes.github_resources import CheckRunRec, CommentRec, IssueRec, PullRec, RepoRec, now

if TYPE_CHECKING:
    from tests.fakes.github_double import GitHubDouble

NOT_FOUND = {"message": "Not Found",
             "documentation_url": "https://docs.github.com/rest", "status": "404"}


@dataclass
class Call:
    """One API request, matched and authenticated."""

    operation_id: str
    params: dict[str, str]
    query: dict[str, str]
    body: Any
    repo: RepoRec | None
    url: str


@dataclass
class Reply:
    """What a handler answers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict[str, str])


def _git(double: GitHubDouble, repo: RepoRec, *args: str) -> str | None:
    done = subprocess.run(["git", "-C", str(repo.bare), *args], capture_output=True,
                          check=False, timeout=60)
    return done.stdout.decode().strip() if done.returncode == 0 else None


def head_sha(double: GitHubDouble, repo: RepoRec, branch: str) -> str | None:
    """The commit a branch of the bare repository points at."""
    return _git(double, repo, "rev-parse", "--verify", "-q", f"refs/heads/{branch}^{{commit}}")


def _page(call: Call, items: list[Any]) -> Reply:
    per_page = min(int(call.query.get("per_page", "30")), 100)
    page = max(int(call.query.get("page", "1")), 1)
    chunk = items[(page - 1) * per_page: page * per_page]
    last = max((len(items) + per_page - 1) // per_page, 1)
    links: list[str] = []
    if page < last:
        for rel, number in (("next", page + 1), ("last", last)):
            query = urlencode({**call.query, "page": str(number)})
            links.append(f'<{call.url}?{query}>; rel="{rel}"')
    return Reply(200, chunk, {"Link": ", ".join(links)} if links else {})


class Handlers:
    """Operation id → behaviour, over the double's state."""

    def __init__(self, double: GitHubDouble) -> None:
        self.d = double
        self.table: dict[str, Callable[[Call], Reply]] = {
            "apps/get-authenticated": self.get_app,
            "apps/create-installation-access-token": self.create_token,
            "apps/get-repo-installation": self.get_repo_installation,
            "repos/get": self.get_repo,
            "issues/get": self.get_issue,
            "issues/list-comments": self.list_comments,
            "issues/create-comment": self.create_comment,
            "issues/get-comment": self.get_comment,
            "issues/update-comment": self.update_comment,
            "issues/list-labels-on-issue": self.list_labels,
            "issues/add-labels": self.add_labels,
            "reactions/create-for-issue": self.react,
            "reactions/create-for-issue-comment": self.react,
            "repos/get-collaborator-permission-level": self.permission,
            "pulls/list": self.list_pulls,
            "pulls/create": self.create_pull,
            "pulls/get": self.get_pull,
            "pulls/update": self.update_pull,
            "checks/create": self.create_check,
            "checks/get": self.get_check,
            "checks/update": self.update_check,
            "checks/list-for-ref": self.list_checks,
            "repos/get-content": self.get_content,
            "git/get-ref": self.get_ref,
        }

    # -- apps --------------------------------------------------------------------------------

    def get_app(self, call: Call) -> Reply:
        return Reply(200, self.d.app_json())

    def get_repo_installation(self, call: Call) -> Reply:
        return Reply(200, self.d.installation_json())

    def create_token(self, call: Call) -> Reply:
        if int(call.params["installation_id"]) != self.d.installation_id:
            return Reply(404, NOT_FOUND)
        body: dict[str, Any] = call.body or {}
        names: list[str] = body.get("repositories") or [r.name for r in self.d.repos.values()]
        wanted: dict[str, str] = body.get("permissions") or dict(self.d.granted)
        unknown = [n for n in names if n not in {r.name for r in self.d.repos.values()}]
        too_much = [k for k, v in wanted.items() if not _covers(self.d.granted.get(k), v)]
        if unknown or too_much:
            return Reply(422, {"message": "The permissions requested are not granted to this "
                                          f"installation: {unknown or too_much}",
                               "documentation_url": "https://docs.github.com/rest"})
        return Reply(201, self.d.mint_token(names, wanted))

    # -- repository, issues, comments -------------------------------------------------------

    def get_repo(self, call: Call) -> Reply:
        assert call.repo is not None
        return Reply(200, self.d.repo_json(call.repo))

    def _issue(self, call: Call, key: str = "issue_number") -> IssueRec | None:
        assert call.repo is not None
        return call.repo.issues.get(int(call.params[key]))

    def get_issue(self, call: Call) -> Reply:
        issue = self._issue(call)
        if issue is None:
            return Reply(404, NOT_FOUND)
        return Reply(200, self.d.issue_json(call.repo, issue))  # type: ignore[arg-type]

    def list_comments(self, call: Call) -> Reply:
        repo, issue = call.repo, self._issue(call)
        if issue is None or repo is None:
            return Reply(404, NOT_FOUND)
        found = sorted((c for c in repo.comments.values() if c.number == issue.number),
                       key=lambda c: c.id)
        return _page(call, [self.d.comment_json(repo, c) for c in found])

    def create_comment(self, call: Call) -> Reply:
        repo, issue = call.repo, self._issue(call)
        if issue is None or repo is None:
            return Reply(404, NOT_FOUND)
        comment = self.d.add_comment(repo, issue.number, self.d.bot_login, call.body["body"])
        return Reply(201, self.d.comment_json(repo, comment))

    def get_comment(self, call: Call) -> Reply:
        assert call.repo is not None
        comment = call.repo.comments.get(int(call.params["comment_id"]))
        if comment is None:
            return Reply(404, NOT_FOUND)
        return Reply(200, self.d.comment_json(call.repo, comment))

    def update_comment(self, call: Call) -> Reply:
        assert call.repo is not None
        comment = call.repo.comments.get(int(call.params["comment_id"]))
        if comment is None:
            return Reply(422, {"message": "Validation Failed",
                               "documentation_url": "https://docs.github.com/rest"})
        if comment.user != self.d.bot_login:
            return Reply(403, {"message": "Resource not accessible by integration",
                               "documentation_url": "https://docs.github.com/rest"})
        comment.body = call.body["body"]
        comment.updated_at = now()
        return Reply(200, self.d.comment_json(call.repo, comment))

    def list_labels(self, call: Call) -> Reply:
        issue = self._issue(call)
        if issue is None or call.repo is None:
            return Reply(404, NOT_FOUND)
        return _page(call, [self.d.shapes.label(call.repo, n) for n in issue.labels])

    def add_labels(self, call: Call) -> Reply:
        issue = self._issue(call)
        if issue is None or call.repo is None:
            return Reply(404, NOT_FOUND)
        raw: Any = call.body
        names = cast(list[Any], raw["labels"] if isinstance(raw, dict) else raw)
        for name in [str(n) for n in names]:
            if name not in issue.labels:
                issue.labels.append(name)
        return Reply(200, [self.d.shapes.label(call.repo, n) for n in issue.labels])

    def react(self, call: Call) -> Reply:
        assert call.repo is not None
        target = (f"comment-{call.params['comment_id']}" if "comment_id" in call.params
                  else f"issue-{call.params['issue_number']}")
        content = str(call.body["content"])
        for old in call.repo.reactions:
            if (old["target"], old["content"], old["user"]) == (target, content,
                                                                self.d.bot_login):
                return Reply(200, self.d.reaction_json(old["id"], content))
        reaction_id = self.d.next_id()
        call.repo.reactions.append({"id": reaction_id, "target": target, "content": content,
                                    "user": self.d.bot_login})
        return Reply(201, self.d.reaction_json(reaction_id, content))

    def permission(self, call: Call) -> Reply:
        assert call.repo is not None
        user = self.d.users.get(call.params["username"])
        if user is None:
            return Reply(404, NOT_FOUND)
        role = call.repo.roles.get(user.login, "admin" if user.login == call.repo.owner
                                   else "none")
        return Reply(200, self.d.shapes.permission(role, user))

    # -- pull requests ---------------------------------------------------------------------------

    def list_pulls(self, call: Call) -> Reply:
        repo = call.repo
        assert repo is not None
        state = call.query.get("state", "open")
        head = call.query.get("head")
        pulls = [i for i in repo.issues.values() if i.pull is not None
                 and (state == "all" or i.state == state)
                 and (head is None or f"{repo.owner}:{i.pull.head}" == head)]
        pulls.sort(key=lambda i: i.number, reverse=call.query.get("direction", "desc") == "desc")
        return _page(call, [self.d.pull_json(repo, i, simple=True) for i in pulls])

    def create_pull(self, call: Call) -> Reply:
        repo = call.repo
        assert repo is not None
        body: dict[str, Any] = call.body
        head, base = str(body["head"]).split(":")[-1], str(body["base"])
        if head_sha(self.d, repo, head) is None or head_sha(self.d, repo, base) is None:
            return Reply(422, _invalid("PullRequest", "head", "invalid"))
        if any(i.pull and i.state == "open" and i.pull.head == head and i.pull.base == base
               for i in repo.issues.values()):
            return Reply(422, _invalid("PullRequest", "head", "already_exists"))
        issue = self.d.add_issue(repo, str(body.get("title", "")), str(body.get("body") or ""),
                                 self.d.bot_login)
        issue.pull = PullRec(head=head, base=base, draft=bool(body.get("draft", False)))
        return Reply(201, self.d.pull_json(repo, issue))

    def get_pull(self, call: Call) -> Reply:
        issue = self._issue(call, "pull_number")
        if issue is None or issue.pull is None or call.repo is None:
            return Reply(404, NOT_FOUND)
        return Reply(200, self.d.pull_json(call.repo, issue))

    def update_pull(self, call: Call) -> Reply:
        issue = self._issue(call, "pull_number")
        if issue is None or issue.pull is None or call.repo is None:
            return Reply(422, _invalid("PullRequest", "number", "missing"))
        body: dict[str, Any] = call.body or {}
        issue.title = str(body.get("title", issue.title))
        issue.body = str(body.get("body", issue.body) or "")
        issue.state = str(body.get("state", issue.state))
        issue.updated_at = now()
        return Reply(200, self.d.pull_json(call.repo, issue))

    # -- checks ----------------------------------------------------------------------------------

    def create_check(self, call: Call) -> Reply:
        repo = call.repo
        assert repo is not None
        body: dict[str, Any] = call.body
        if _git(self.d, repo, "cat-file", "-e", f"{body['head_sha']}^{{commit}}") is None:
            return Reply(422, _invalid("CheckRun", "head_sha", "invalid"))
        run = CheckRunRec(id=self.d.next_id(), name=str(body["name"]),
                          head_sha=str(body["head_sha"]), status="queued", conclusion=None,
                          external_id=str(body.get("external_id", "")), output={})
        _apply_check(run, body)
        repo.check_runs[run.id] = run
        return Reply(201, self.d.check_json(repo, run))

    def get_check(self, call: Call) -> Reply:
        assert call.repo is not None
        run = call.repo.check_runs.get(int(call.params["check_run_id"]))
        if run is None:
            return Reply(404, NOT_FOUND)  # undocumented here: the contract check will say so
        return Reply(200, self.d.check_json(call.repo, run))

    def update_check(self, call: Call) -> Reply:
        assert call.repo is not None
        run = call.repo.check_runs[int(call.params["check_run_id"])]
        _apply_check(run, call.body or {})
        return Reply(200, self.d.check_json(call.repo, run))

    def list_checks(self, call: Call) -> Reply:
        repo = call.repo
        assert repo is not None
        ref = call.params["ref"]
        sha = head_sha(self.d, repo, ref) or ref
        name = call.query.get("check_name")
        runs = [r for r in repo.check_runs.values()
                if r.head_sha == sha and (name is None or r.name == name)]
        page = _page(call, [self.d.check_json(repo, r) for r in runs])
        return Reply(200, {"total_count": len(runs), "check_runs": page.body}, page.headers)

    # -- contents and refs -----------------------------------------------------------------------

    def get_content(self, call: Call) -> Reply:
        repo = call.repo
        assert repo is not None
        ref = call.query.get("ref", repo.default_branch)
        path = call.params["path"]
        done = subprocess.run(["git", "-C", str(repo.bare), "cat-file", "blob", f"{ref}:{path}"],
                              capture_output=True, check=False, timeout=60)
        if done.returncode != 0:
            return Reply(404, NOT_FOUND)
        sha = _git(self.d, repo, "rev-parse", f"{ref}:{path}") or ""
        return Reply(200, self.d.shapes.content(repo, path, done.stdout, sha))

    def get_ref(self, call: Call) -> Reply:
        repo = call.repo
        assert repo is not None
        ref = call.params["ref"]
        sha = _git(self.d, repo, "rev-parse", "--verify", "-q", f"refs/{ref}")
        if sha is None:
            return Reply(404, NOT_FOUND)
        return Reply(200, self.d.shapes.ref(repo, f"refs/{ref}", sha))


def _covers(granted: str | None, wanted: str) -> bool:
    order = {"read": 1, "write": 2, "admin": 3}
    return granted is not None and order.get(granted, 0) >= order.get(wanted, 9)


def _invalid(resource: str, field_name: str, code: str) -> dict[str, Any]:
    return {"message": "Validation Failed", "documentation_url": "https://docs.github.com/rest",
            "errors": [{"resource": resource, "field": field_name, "code": code}]}


def _apply_check(run: CheckRunRec, body: dict[str, Any]) -> None:
    run.status = str(body.get("status", run.status))
    if "conclusion" in body:
        run.conclusion = body["conclusion"]
        run.status = "completed"
    if "external_id" in body:
        run.external_id = str(body["external_id"])
    if "output" in body:
        run.output = dict(body["output"])
    if run.status == "completed" and run.completed_at is None:
        stamp = body.get("completed_at")
        run.completed_at = (dt.datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
                            if stamp else now())


__all__ = ["Call", "CommentRec", "Handlers", "Reply", "head_sha"]
