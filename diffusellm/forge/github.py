"""The GitHub forge: REST by PyGithub with GitHub App auth, git over HTTPS with the same token."""

from __future__ import annotations

import datetime as dt
import functools
import json
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, cast

import requests
from github import Auth, Github, GithubException, UnknownObjectException
from github.IssueComment import IssueComment
from github.PullRequest import PullRequest as GhPullRequest
from github.Repository import Repository

from diffusellm.forge import gitauth
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
from diffusellm.forge.github_auth import (
    WORKER_PERMISSIONS,
    InstallationAuth,
    InstallationTokens,
    make_client,
)
from diffusellm.forge.github_settings import GitHubSecrets, GitHubSettings, api_url
from diffusellm.forge.outage import outage_error

P = ParamSpec("P")
R = TypeVar("R")
_MAX_BODY = 65_000
"""GitHub rejects comment and PR bodies over 65,536 characters."""


def _api(what: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Turn PyGithub errors into ForgeError naming the request; 5xx and rate limits retryable."""

    def wrap(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return func(*args, **kwargs)
            except GithubException as exc:
                message = _error_text(exc)
                retryable = exc.status >= 500 or exc.status == 429 or "rate limit" in message
                raise ForgeError(f"GitHub: {what} failed: {exc.status} {message}",
                                 retryable=retryable,
                                 hint="see docs/DEPLOY.md for the permissions the App needs"
                                 ) from None
            except (requests.RequestException, OSError) as exc:
                if (error := outage_error(exc, what)) is None:
                    raise
                raise error from exc

        return call

    return wrap


def _error_text(exc: GithubException) -> str:
    """GitHub's message plus its per-field errors (a 422 says little without them)."""
    data: Any = exc.data
    message = exc.message or str(data)[:300]
    errors: Any = cast(dict[str, Any], data).get("errors") if isinstance(data, dict) else None
    details = json.dumps(errors)[:300]
    return message if details == "null" else f"{message} {details}"


def _clip(body: str) -> str:
    return body if len(body) <= _MAX_BODY else body[:_MAX_BODY] + "\n\n… (cut: too long)"


def _comment(c: IssueComment) -> Comment:
    return Comment(id=c.id, author=c.user.login, author_type=c.user.type or "User",
                   body=c.body or "", created_at=c.created_at, updated_at=c.updated_at,
                   html_url=c.html_url)


def _comment_json(data: Mapping[str, Any]) -> Comment:
    user: Mapping[str, Any] = data.get("user") or {}

    def when(key: str) -> dt.datetime:
        return dt.datetime.fromisoformat(str(data[key]).replace("Z", "+00:00"))

    return Comment(id=int(data["id"]), author=str(user.get("login", "")),
                   author_type=str(user.get("type", "User")), body=str(data.get("body") or ""),
                   created_at=when("created_at"), updated_at=when("updated_at"),
                   html_url=str(data.get("html_url", "")))


def _pull(pr: GhPullRequest) -> PullRequest:
    return PullRequest(number=pr.number, head_branch=pr.head.ref, base_branch=pr.base.ref,
                       title=pr.title, body=pr.body or "", html_url=pr.html_url,
                       draft=bool(pr.draft), state=pr.state)


class GitHubForge:
    """One repository on GitHub, acting as the App's installation."""

    def __init__(self, client: Github, repo_full_name: str, *, bot_login: str,
                 token: Callable[[], str]) -> None:
        self._gh = client
        self._name = repo_full_name
        self._bot = bot_login
        self._token = token
        self._meta: RepoMeta | None = None

    @property
    def repo_full_name(self) -> str:
        """`owner/name`."""
        return self._name

    @property
    def bot_login(self) -> str:
        """`<app-slug>[bot]`."""
        return self._bot

    def _repo(self) -> Repository:
        return self._gh.get_repo(self._name)

    @_api("reading the repository")
    def repository(self) -> RepoMeta:
        """Default branch and clone URL (cached for this forge)."""
        if self._meta is None:
            _, data = self._gh.requester.requestJsonAndCheck("GET", f"/repos/{self._name}")
            self._meta = RepoMeta(full_name=str(data["full_name"]),
                                  default_branch=str(data["default_branch"]),
                                  clone_url=str(data["clone_url"]))
        return self._meta

    def sync_checkout(self, dest: Path, branch: str | None = None) -> str:
        """Fetch over HTTPS with a fresh token given to git for that command only."""
        meta = self.repository()
        return gitauth.sync_checkout(meta.clone_url, dest, branch=branch or meta.default_branch,
                                     default_branch=meta.default_branch, token=self._token())

    def push_branch(self, checkout: Path, local_branch: str, remote_branch: str) -> None:
        """Force-push the bot's branch (it is the bot's alone: the marker proves the PR is ours)."""
        gitauth.push_branch(checkout, self.repository().clone_url, local_branch=local_branch,
                            remote_branch=remote_branch, token=self._token())

    @_api("reading the issue")
    def get_issue(self, number: int) -> Issue:
        """The issue (or PR) as it reads now."""
        issue = self._repo().get_issue(number)
        return Issue(number=issue.number, title=issue.title, body=issue.body or "",
                     author=issue.user.login, is_pull_request=issue.pull_request is not None,
                     state=issue.state, html_url=issue.html_url)

    @_api("listing comments")
    def list_comments(self, number: int) -> list[Comment]:
        """Every comment, oldest first (all pages)."""
        return [_comment(c) for c in self._repo().get_issue(number).get_comments()]

    @_api("posting a comment")
    def post_comment(self, number: int, body: str) -> Comment:
        """A new comment on the issue or PR."""
        return _comment(self._repo().get_issue(number).create_comment(_clip(body)))

    @_api("editing a comment")
    def edit_comment(self, comment_id: int, body: str) -> Comment:
        """Replace a comment's body (the bot can only edit its own)."""
        _, data = self._gh.requester.requestJsonAndCheck(
            "PATCH", f"/repos/{self._name}/issues/comments/{comment_id}",
            input={"body": _clip(body)})
        return _comment_json(data)

    @_api("adding a reaction")
    def add_reaction(self, number: int, content: ReactionKind) -> None:
        """React to the issue itself (a repeated reaction is fine: GitHub answers 200)."""
        self._repo().get_issue(number).create_reaction(content)

    @_api("adding a reaction")
    def add_comment_reaction(self, comment_id: int, content: ReactionKind) -> None:
        """React to a comment."""
        self._gh.requester.requestJsonAndCheck(
            "POST", f"/repos/{self._name}/issues/comments/{comment_id}/reactions",
            input={"content": content})

    @_api("looking for the bot's pull request")
    def find_pull_request(self, marker: str, head_branch: str | None = None) -> PullRequest | None:
        """The bot's own PR holding `marker`: by head branch when known, else among open ones."""
        owner = self._name.split("/", 1)[0]
        repo = self._repo()
        pulls = (repo.get_pulls(state="all", head=f"{owner}:{head_branch}") if head_branch
                 else repo.get_pulls(state="open", sort="created", direction="desc"))
        for pr in pulls:
            if pr.user.login.lower() == self._bot.lower() and marker in (pr.body or ""):
                return _pull(pr)
        return None

    @_api("opening the pull request")
    def create_pull_request(self, *, title: str, body: str, head: str, base: str,
                            draft: bool) -> PullRequest:
        """A new pull request from `head` into `base`."""
        return _pull(self._repo().create_pull(title=title, body=_clip(body), head=head,
                                              base=base, draft=draft))

    @_api("updating the pull request")
    def update_pull_request(self, number: int, *, title: str, body: str) -> PullRequest:
        """New title and body for the bot's PR."""
        pr = self._repo().get_pull(number)
        pr.edit(title=title, body=_clip(body))
        return _pull(pr)

    @_api("reading the pull request")
    def get_pull_request(self, number: int) -> PullRequest:
        """A pull request by number."""
        return _pull(self._repo().get_pull(number))

    @_api("writing the check run")
    def upsert_check_run(self, *, name: str, head_sha: str, conclusion: CheckConclusion,
                         output: CheckRunOutput, external_id: str) -> int:
        """A completed check run on `head_sha`; ours (same external id) is updated, not doubled."""
        repo = self._repo()
        out: dict[str, str | list[dict[str, str | int]]] = {
            "title": output.title, "summary": _clip(output.summary), "text": _clip(output.text)}
        now = dt.datetime.now(dt.UTC)
        for run in repo.get_commit(head_sha).get_check_runs(check_name=name):
            if run.external_id == external_id:
                run.edit(status="completed", conclusion=conclusion, output=out,  # pyright: ignore[reportUnknownMemberType]
                         completed_at=now)
                return int(run.id)
        created = repo.create_check_run(name=name, head_sha=head_sha, status="completed",
                                        conclusion=conclusion, external_id=external_id,
                                        output=out, completed_at=now)
        return int(created.id)

    @_api("reading a file from the default branch")
    def get_default_branch_file(self, path: str) -> str | None:
        """The file's text, or None when it is absent (404) or not a file."""
        try:
            content = self._repo().get_contents(path, ref=self.repository().default_branch)
        except UnknownObjectException:
            return None
        if isinstance(content, list):
            return None
        return content.decoded_content.decode("utf-8", "replace")

    @_api("reading a user's permission")
    def get_permission(self, username: str) -> Permission:
        """GET /repos/{owner}/{repo}/collaborators/{username}/permission; a stranger is `none`."""
        try:
            _, data = self._gh.requester.requestJsonAndCheck(
                "GET", f"/repos/{self._name}/collaborators/{username}/permission")
        except UnknownObjectException:
            return Permission(permission="none")
        role = data.get("role_name")
        return Permission(permission=str(data.get("permission", "none")),
                          role_name=str(role) if role else None)


class GitHubApp:
    """The App: one JWT-authenticated client, token minting, and a forge per repository."""

    def __init__(self, *, app_id: str, private_key: str, settings: GitHubSettings, base_url: str,
                 permissions: Mapping[str, str] = WORKER_PERMISSIONS) -> None:
        self._settings = settings
        self._api_url = base_url
        self._client = make_client(Auth.AppAuth(app_id, private_key), base_url, settings)
        self._tokens = InstallationTokens(self._client, permissions=permissions,
                                          margin_s=settings.token_refresh_margin_s)
        self._forges: dict[tuple[int, str], GitHubForge] = {}
        self._lock = threading.Lock()
        self._slug = settings.app_slug

    @classmethod
    def from_secrets(cls, settings: GitHubSettings, secrets: GitHubSecrets, *,
                     permissions: Mapping[str, str] = WORKER_PERMISSIONS) -> GitHubApp:
        """Built from APP_ID and the private key; GHE_HOST selects the Enterprise API root."""
        app_id, key = secrets.require_app()
        return cls(app_id=app_id, private_key=key, settings=settings,
                   base_url=api_url(settings, secrets), permissions=permissions)

    @property
    def bot_login(self) -> str:
        """`<slug>[bot]`; the slug from settings, else GET /app."""
        if self._slug is None:
            try:
                _, data = self._client.requester.requestJsonAndCheck("GET", "/app")
            except GithubException as exc:
                raise ForgeError(f"GitHub: GET /app failed: {exc.status}",
                                 hint="check APP_ID and the private key",
                                 retryable=exc.status >= 500) from None
            except (requests.RequestException, OSError) as exc:
                if (error := outage_error(exc, "reading the App (GET /app)")) is None:
                    raise
                raise error from exc
            self._slug = str(data["slug"])
        return f"{self._slug}[bot]"

    def forge(self, repo_full_name: str, installation_id: int | None) -> GitHubForge:
        """The forge for one repository, acting as the installation (found if not given)."""
        if installation_id is None:
            installation_id = self._tokens.installation_for(repo_full_name)
        key = (installation_id, repo_full_name)
        with self._lock:
            if key not in self._forges:
                auth = InstallationAuth(self._tokens, installation_id, repo_full_name)
                client = make_client(auth, self._api_url, self._settings)
                self._forges[key] = GitHubForge(
                    client, repo_full_name, bot_login=self.bot_login,
                    token=functools.partial(self._tokens.token, installation_id, repo_full_name))
            return self._forges[key]
