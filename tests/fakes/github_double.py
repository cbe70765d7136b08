"""A stateful local GitHub double: REST checked against GitHub's OpenAPI file, git by smart HTTP."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import functools
import itertools
import json
import secrets
import subprocess
import threading
import time
from collections.abc import Generator, Mapping
from pathlib import Path
from typing import Any

import jwt
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from diffusellm.forge.github import GitHubApp
from diffusellm.forge.github_auth import WORKER_PERMISSIONS
from diffusellm.forge.github_settings import GitHubSettings
from tests.fakes.git_http import run_backend, wants_push
from tests.fakes.github_access import (
    DEFAULT_GRANT,
    JWT_OPERATIONS,
    Fault,
    Logged,
    TokenRec,
    bad_credentials,
    json_response,
    level_ok,
    needs,
    parse_query,
)
from tests.fakes.github_handlers import Call, Handlers, Reply, head_sha
from tests.fakes.github_resources import (
    CommentRec,
    IssueRec,
    RepoRec,
    Shapes,
    User,
    now,
)
from tests.fakes.openapi_check import OpenApiContract, Operation


@functools.cache
def contract() -> OpenApiContract:
    """The bot-subset description, loaded once per test session."""
    return OpenApiContract()


class GitHubDouble:
    """GitHub for tests: one App with one installation, repositories with bare git storage."""

    def __init__(self, root: Path, *, app_id: int = 4242, slug: str = "diffusellm-test",
                 installation_id: int = 77) -> None:
        self.root = root
        (root / "git").mkdir(parents=True, exist_ok=True)
        self.app_id, self.slug, self.installation_id = app_id, slug, installation_id
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption()).decode()
        self._public_key = key.public_key()
        self.contract = contract()
        self.users: dict[str, User] = {}
        self.repos: dict[str, RepoRec] = {}
        self.tokens: dict[str, TokenRec] = {}
        self.granted: dict[str, str] = dict(DEFAULT_GRANT)
        self.violations: list[str] = []
        self.log: list[Logged] = []
        self.faults: list[Fault] = []
        self.lock = threading.RLock()
        self._ids = itertools.count(1001)
        self.url = ""
        self.shapes = Shapes(self.contract, "http://127.0.0.1")
        self.handlers = Handlers(self)
        self.add_user(self.bot_login, kind="Bot")
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self, port: int = 0) -> GitHubDouble:
        """Serve on 127.0.0.1 (`port`, else a free one) in a background thread."""
        config = uvicorn.Config(self._asgi(), host="127.0.0.1", port=port, log_level="warning",
                                lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the GitHub double did not start")
            time.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.shapes = Shapes(self.contract, self.url)
        return self

    def stop(self) -> None:
        """Shut the server down."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=30)

    def restart(self) -> None:
        """Serve again on the same port, with the same state (after `stop`: an outage ends)."""
        self.start(int(self.url.rsplit(":", 1)[1]))

    # -- state set-up and inspection -------------------------------------------------------------

    @property
    def bot_login(self) -> str:
        """The App's bot account."""
        return f"{self.slug}[bot]"

    def next_id(self) -> int:
        """A fresh id for any record."""
        with self.lock:
            return next(self._ids)

    def add_user(self, login: str, *, kind: str = "User") -> User:
        """An account (kind User or Bot)."""
        user = User(login=login, id=self.next_id(), type=kind)
        self.users[login] = user
        return user

    def add_repo(self, owner: str, name: str, source: Path, *,
                 default_branch: str = "main") -> RepoRec:
        """A repository whose git storage is a bare clone of the local repository `source`."""
        if owner not in self.users:
            self.add_user(owner)
        bare = self.root / "git" / owner / f"{name}.git"
        subprocess.run(["git", "clone", "-q", "--bare", str(source), str(bare)], check=True,
                       capture_output=True)
        repo = RepoRec(owner=owner, name=name, id=self.next_id(), bare=bare,
                       default_branch=default_branch)
        self.repos[repo.full_name] = repo
        return repo

    def set_role(self, repo: RepoRec, login: str, role: str) -> None:
        """A collaborator's role: admin, maintain, write, triage or read."""
        if login not in self.users:
            self.add_user(login)
        repo.roles[login] = role

    def add_issue(self, repo: RepoRec, title: str, body: str, author: str,
                  labels: list[str] | None = None) -> IssueRec:
        """An issue (numbers are shared with pull requests)."""
        with self.lock:
            number = max(repo.issues, default=0) + 1
            issue = IssueRec(number=number, id=self.next_id(), title=title, body=body,
                             user=author, labels=list(labels or []))
            repo.issues[number] = issue
            return issue

    def add_comment(self, repo: RepoRec, number: int, author: str, body: str) -> CommentRec:
        """A comment on issue or PR `number`."""
        with self.lock:
            comment = CommentRec(id=self.next_id(), number=number, user=author, body=body)
            repo.comments[comment.id] = comment
            return comment

    def comments_on(self, repo: RepoRec, number: int) -> list[CommentRec]:
        """Comments of one issue or PR, oldest first."""
        return sorted((c for c in repo.comments.values() if c.number == number),
                      key=lambda c: c.id)

    def pulls(self, repo: RepoRec) -> list[IssueRec]:
        """Every pull request of the repository."""
        return [i for i in repo.issues.values() if i.pull is not None]

    def branch_sha(self, repo: RepoRec, branch: str) -> str | None:
        """Where a branch of the bare repository points."""
        return head_sha(self, repo, branch)

    def branches(self, repo: RepoRec) -> list[str]:
        """Branch names in the bare repository."""
        out = subprocess.run(["git", "-C", str(repo.bare), "for-each-ref", "--format=%(refname)",
                              "refs/heads"], capture_output=True, text=True, check=True).stdout
        return [line.removeprefix("refs/heads/") for line in out.split()]

    def inject(self, status: int, body: Any, *, headers: dict[str, str] | None = None,
               times: int = 1, operation_id: str | None = None) -> None:
        """Answer the next `times` matching API requests with this instead."""
        self.faults.append(Fault(status, body, dict(headers or {}), times, operation_id))

    # -- JSON of records -------------------------------------------------------------------------

    def _user(self, login: str) -> User:
        return self.users.get(login) or self.add_user(login)

    def app_json(self) -> dict[str, Any]:
        return self.shapes.app(self.app_id, self.slug, self._owner_user())

    def installation_json(self) -> dict[str, Any]:
        return self.shapes.installation(self.installation_id, self.app_id, self.slug,
                                        self._owner_user())

    def _owner_user(self) -> User:
        owners = [r.owner for r in self.repos.values()]
        return self._user(owners[0] if owners else "octocat")

    def repo_json(self, repo: RepoRec) -> dict[str, Any]:
        return self.shapes.repo(repo, self._user(repo.owner))

    def issue_json(self, repo: RepoRec, issue: IssueRec) -> dict[str, Any]:
        return self.shapes.issue(repo, issue, self._user(issue.user))

    def comment_json(self, repo: RepoRec, comment: CommentRec) -> dict[str, Any]:
        return self.shapes.comment(repo, comment, self._user(comment.user))

    def reaction_json(self, reaction_id: int, content: str) -> dict[str, Any]:
        return self.shapes.reaction(reaction_id, content, self._user(self.bot_login))

    def pull_json(self, repo: RepoRec, issue: IssueRec, *, simple: bool = False) -> dict[str, Any]:
        assert issue.pull is not None
        issue.pull.head_sha = head_sha(self, repo, issue.pull.head) or issue.pull.head_sha
        return self.shapes.pull(repo, issue, self._user(issue.user), self._user(repo.owner),
                                simple=simple)

    def check_json(self, repo: RepoRec, run: Any) -> dict[str, Any]:
        return self.shapes.check_run(repo, run, self.app_json())

    def mint_token(self, names: list[str], permissions: dict[str, str]) -> dict[str, Any]:
        value = "ghs_" + secrets.token_hex(18)
        expires = now() + dt.timedelta(hours=1)
        repos = [r for r in self.repos.values() if r.name in names]
        self.tokens[value] = TokenRec(value, {r.full_name for r in repos}, dict(permissions),
                                      expires)
        return self.shapes.token(value, expires, permissions, [self.repo_json(r) for r in repos])

    # -- HTTP ------------------------------------------------------------------------------------

    def _asgi(self) -> FastAPI:
        app = FastAPI()

        @app.api_route("/{path:path}", methods=["GET", "POST", "PATCH", "PUT", "DELETE"])
        async def serve(request: Request, path: str) -> Response:  # pyright: ignore[reportUnusedFunction]
            body = await request.body()
            headers = {k.lower(): v for k, v in request.headers.items()}
            return await run_in_threadpool(self.handle, request.method, "/" + path,
                                           request.url.query, headers, body)

        return app

    def handle(self, method: str, path: str, query: str, headers: dict[str, str],
               body: bytes) -> Response:
        """Serve one request: git smart HTTP under /{owner}/{repo}.git, else the REST API."""
        if ".git/" in path:
            return self._git(method, path, query, headers, body)
        with self.lock:
            return self._api(method, path, query, headers, body)

    def _api(self, method: str, path: str, query: str, headers: dict[str, str],
             body: bytes) -> Response:
        found = self.contract.match(method, path)
        if found is None:
            self.violations.append(f"{method} {path}: no such operation in the description")
            self.log.append(Logged(method, path, 404, "?"))
            return json_response(404, {"message": "Not Found"})
        op, params = found
        query_map = dict(parse_query(query))
        problems = self.contract.check_request(op, params, query_map, body)
        if problems:
            self.violations += [f"{method} {path} request: {p}" for p in problems]
            return self._finish(op, method, path, Reply(422, {"message": "; ".join(problems)}),
                                checked=False)
        fault = self._fault(op)
        if fault is not None:
            return self._finish(op, method, path, fault, checked=False)
        denied, repo = self._authorize(op, params, headers)
        if denied is not None:
            return self._finish(op, method, path, denied, checked=False)
        data = json.loads(body) if body.strip() else None
        call = Call(op.operation_id, params, query_map, data, repo, f"{self.url}{path}")
        handler = self.handlers.table.get(op.operation_id)
        if handler is None:
            self.violations.append(f"{op.operation_id} is described but the double lacks it")
            return self._finish(op, method, path, Reply(501, {"message": "not in the double"}),
                                checked=False)
        return self._finish(op, method, path, handler(call), checked=True, request_body=data)

    def _finish(self, op: Operation, method: str, path: str, reply: Reply, *, checked: bool,
                request_body: Any = None) -> Response:
        if checked:
            problems = self.contract.check_response(op, reply.status, reply.body)
            self.violations += [f"{method} {path} → {reply.status}: {p}" for p in problems]
        self.log.append(Logged(method, path, reply.status, op.operation_id, request_body))
        headers = {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "4999",
                   "x-ratelimit-reset": str(int(time.time()) + 3600),
                   "x-ratelimit-used": "1", "x-ratelimit-resource": "core", **reply.headers}
        if reply.body is None:
            return Response(status_code=reply.status, headers=headers)
        return json_response(reply.status, reply.body, headers)

    def _fault(self, op: Operation) -> Reply | None:
        for fault in self.faults:
            if fault.times > 0 and fault.operation_id in (None, op.operation_id):
                fault.times -= 1
                return Reply(fault.status, fault.body, fault.headers)
        return None

    def _authorize(self, op: Operation, params: dict[str, str],
                   headers: dict[str, str]) -> tuple[Reply | None, RepoRec | None]:
        scheme, _, credential = headers.get("authorization", "").partition(" ")
        repo = self.repos.get(f"{params.get('owner')}/{params.get('repo')}")
        if op.operation_id in JWT_OPERATIONS:
            return (None if self._valid_jwt(scheme, credential) else bad_credentials()), repo
        token = self.tokens.get(credential) if scheme.lower() in ("token", "bearer") else None
        if token is None or token.expires_at <= now():
            return bad_credentials(), repo
        if "owner" in params and (repo is None or repo.full_name not in token.repos):
            return Reply(404, {"message": "Not Found", "documentation_url": "x"}), repo
        need = needs(op)
        if need is not None and not level_ok(token.permissions.get(need[0]), need[1]):
            return Reply(403, {"message": "Resource not accessible by integration",
                               "documentation_url": "x"}), repo
        return None, repo

    def _valid_jwt(self, scheme: str, credential: str) -> bool:
        if scheme.lower() != "bearer":
            return False
        try:
            claims = jwt.decode(credential, self._public_key, algorithms=["RS256"],
                                options={"require": ["iat", "exp", "iss"]}, leeway=60)
        except jwt.PyJWTError:
            return False
        return str(claims["iss"]) == str(self.app_id)

    # -- git -------------------------------------------------------------------------------------

    def _git(self, method: str, path: str, query: str, headers: dict[str, str],
             body: bytes) -> Response:
        full = path.split(".git/", 1)[0].strip("/")
        repo = self.repos.get(full)
        push = wants_push(path, query)
        who = self._git_identity(headers.get("authorization", ""), repo, push)
        self.log.append(Logged(method, path, 0 if who else 401, "git", auth=who or ""))
        if repo is None:
            return Response(status_code=404)
        if who is None:
            return Response(status_code=401,
                            headers={"WWW-Authenticate": 'Basic realm="GitHub"'})
        out = run_backend(self.root / "git", method=method, path_info=path, query=query,
                          headers=headers, body=body, remote_user=who)
        return Response(content=out.body, status_code=out.status, headers=dict(out.headers))

    def _git_identity(self, header: str, repo: RepoRec | None, push: bool) -> str | None:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic" or repo is None:
            return None
        user, _, password = base64.b64decode(encoded).decode().partition(":")
        token = self.tokens.get(password)
        if user != "x-access-token" or token is None or token.expires_at <= now():
            return None
        level = "write" if push else "read"
        if repo.full_name not in token.repos or not level_ok(token.permissions.get("contents"),
                                                              level):
            return None
        return self.bot_login


@contextlib.contextmanager
def serve(root: Path) -> Generator[GitHubDouble]:
    """A started double; stopped afterwards."""
    double = GitHubDouble(root).start()
    try:
        yield double
    finally:
        double.stop()


def fast_settings(double: GitHubDouble, **overrides: Any) -> GitHubSettings:
    """Settings pointing at the double, without the production pauses between requests."""
    values: dict[str, Any] = {"base_url": double.url, "seconds_between_requests": 0.0,
                              "seconds_between_writes": 0.0, "secondary_rate_wait_s": 1.0,
                              **overrides}
    return GitHubSettings(**values)


def app_for(double: GitHubDouble, settings: GitHubSettings | None = None,
            permissions: Mapping[str, str] = WORKER_PERMISSIONS) -> GitHubApp:
    """The real GitHubApp, authenticating with the double's App key."""
    return GitHubApp(app_id=str(double.app_id), private_key=double.private_key_pem,
                     settings=settings or fast_settings(double), base_url=double.url,
                     permissions=permissions)
