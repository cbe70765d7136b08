"""Admin pages: token login, job list and detail (live), plan review (approve, edit spec, cancel), retry,
submit, failed webhook deliveries, and the `/query_graph` API."""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import structlog
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from diffusellm.app.admin.auth import SESSION_COOKIE, AdminAuth, EndedSessions, LoginThrottle
from diffusellm.app.admin.deliveries import DeliveryDesk
from diffusellm.app.admin.explain import editor_name
from diffusellm.app.admin.graph import GraphQueryError, graph_path, query_graph
from diffusellm.app.admin.learn import SCANNED_JOBS, learn_view
from diffusellm.app.admin.pages import (
    LOGIN_FORM_BYTES,
    MAX_FORM_BYTES,
    Pages,
    base_path,
    set_cookie,
    static_file,
    template_env,
)
from diffusellm.app.admin.views import Board, JobRow, job_detail, job_row, web_root
from diffusellm.app.inbox import SpoolInbox, state_inbox
from diffusellm.app.reports import load_reports, reports_dir
from diffusellm.app.triage import idempotency_key
from diffusellm.config import Settings
from diffusellm.errors import ConfigError, DiffuseLLMError, SpecError
from diffusellm.forge.freeze import freeze
from diffusellm.forge.github_settings import api_url, secrets_from_env
from diffusellm.jobs.model import (
    EDITED_SPEC_KEY,
    SPEC_AUTHOR_KEY,
    TERMINAL_STATES,
    JobCommand,
    JobState,
    JobStore,
    NewJob,
)
from diffusellm.models.settings import loaded_adapters
from diffusellm.pipeline.spec import load_spec_text

log = structlog.get_logger(__name__)

__all__ = ["AdminStore", "admin_router"]
LIST_LIMIT = 200


class AdminStore(JobStore, Protocol):
    """The job store the admin pages need: a JobStore that can also amend a waiting job."""

    def amend_waiting(self, job_id: str, changes: Mapping[str, Any], message: str) -> bool:
        """Merge `changes` into a waiting job's result; False unless it waits for approval."""
        ...

    def retry(self, job_id: str) -> bool:
        """Queue a failed or dead job again with a fresh set of attempts; False in other states."""
        ...


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _state_filter(value: str) -> JobState | None:
    try:
        return JobState(value) if value else None
    except ValueError:
        return None


@dataclass(frozen=True)
class AdminApp:
    """The admin pages' handlers; each is registered as a route by `admin_router`."""

    store: AdminStore
    pages: Pages
    state_dir: Path
    deliveries: DeliveryDesk
    local_repos: tuple[Path, ...]
    web: str = "https://github.com"
    """GitHub's web root, for links to issues and pull requests."""
    app_adapters: tuple[str, ...] | None = None
    """The LoRA adapters this app's in-process worker loads; None when it runs no worker."""
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    clock: Callable[[], dt.datetime] = field(default=lambda: _utc_now())
    """Now, for elapsed times and back-offs (the store's clock in tests)."""

    def _board(self) -> Board:
        return Board(now=self.clock(), web=self.web,
                     running=self.store.list_jobs(limit=LIST_LIMIT, state=JobState.RUNNING),
                     queued=self.store.list_jobs(limit=LIST_LIMIT, state=JobState.QUEUED))

    def _rows(self, state: str) -> list[JobRow]:
        board = self._board()
        listed = self.store.list_jobs(limit=LIST_LIMIT, state=_state_filter(state))
        return [job_row(j, board, self.store.events(j.id) if j.state is JobState.RUNNING else ())
                for j in listed]

    def _go(self, request: Request, path: str) -> RedirectResponse:
        return RedirectResponse(f"{base_path(request)}{path}", status_code=303)

    def index(self, request: Request) -> Response:
        """`/admin` → the job list."""
        refused = self.pages.guard(request)
        return refused if refused is not None else self._go(request, "/admin/jobs")

    def login_page(self, request: Request) -> Response:
        """The login form (503 while no admin token is configured)."""
        if self.pages.auth is None:
            return self.pages.disabled(request)
        return self.pages.render(request, "login.html", error="")

    def _token_check(self, request: Request, given: str, via: str) -> tuple[bool, int]:
        """(the token is right, seconds the client must wait first); every try is throttled per
        client address and logged, by the login form and Bearer alike."""
        auth = self.pages.auth
        assert auth is not None  # callers answered 503 otherwise
        client = request.client.host if request.client else "unknown"
        wait = self.throttle.wait_seconds(client)
        if wait:
            log.warning("admin.token_throttled", client=client, via=via, wait_s=wait)
            return False, wait
        if not auth.token_matches(given):
            self.throttle.failed(client)
            log.warning("admin.token_failed", client=client, via=via)
            return False, 0
        self.throttle.succeeded(client)
        log.info("admin.token_accepted", client=client, via=via)
        return True, 0

    async def login(self, request: Request) -> Response:
        """Check the submitted token; on success set the signed session cookie."""
        fields = await self.pages.form(request)
        if isinstance(fields, Response):
            return fields
        auth = self.pages.auth
        assert auth is not None  # form() answered 503 otherwise
        right, wait = self._token_check(request, fields.get("token", ""), "login")
        if wait:
            error = f"Too many wrong tokens from this address. Try again in {wait} seconds."
            response = self.pages.render(request, "login.html", 429, error=error)
            response.headers["Retry-After"] = str(wait)
            return response
        if not right:
            return self.pages.render(request, "login.html", 401, error="That token is not right.")
        response = self._go(request, "/admin/jobs")
        set_cookie(response, request, SESSION_COOKIE, auth.new_session(), auth.session_seconds)
        return response

    async def logout(self, request: Request) -> Response:
        """End the session here and now: its cookie is refused from now on, even if copied."""
        fields = await self.pages.form(request)
        if isinstance(fields, Response):
            return fields
        if self.pages.auth is not None:
            self.pages.auth.end_session(request.cookies.get(SESSION_COOKIE))
        response = self._go(request, "/admin/login")
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    def jobs(self, request: Request, state: str = "") -> Response:
        """The job list, newest first, optionally of one state; refreshed by htmx."""
        refused = self.pages.guard(request)
        if refused is not None:
            return refused
        return self.pages.render(request, "jobs.html", rows=self._rows(state), state=state,
                                 states=[s.value for s in JobState], inbox=self.deliveries.summary())

    def learn(self, request: Request) -> Response:
        """The learning loop: pull-request verdicts, remembered runs, trained adapters."""
        refused = self.pages.guard(request)
        if refused is not None:
            return refused
        view = learn_view(self.store, self.state_dir,
                          None if self.app_adapters is None else list(self.app_adapters),
                          load_reports(reports_dir(self.state_dir)))
        return self.pages.render(request, "learn.html", v=view, scanned=SCANNED_JOBS)

    def job_rows(self, request: Request, state: str = "") -> Response:
        """The job list's table body alone (what the htmx refresh swaps in)."""
        refused = self.pages.guard(request)
        if refused is not None:
            return refused
        return self.pages.render(request, "_job_rows.html", rows=self._rows(state), state=state)

    def _job_page(self, request: Request, job_id: str, status: int = 200,
                  **extra: Any) -> Response:
        job = self.store.get(job_id)
        if job is None:
            return self.pages.message(request, 404, "No such job", f"There is no job {job_id}.")
        detail = job_detail(job, self.store.events(job_id), state_dir=self.state_dir,
                            board=self._board())
        return self.pages.render(request, "job.html", status, d=detail,
                                 spec_error=extra.get("spec_error", ""),
                                 spec_draft=extra.get("spec_draft", detail.spec_yaml))

    def job(self, request: Request, job_id: str) -> Response:
        """One job: frozen request, spec, plan, timeline, validation, patch, PR."""
        refused = self.pages.guard(request)
        return refused if refused is not None else self._job_page(request, job_id)

    def job_live(self, request: Request, job_id: str, seen: str = "") -> Response:
        """The job page's live part (state, phase, elapsed, phases, timeline) for its polling; when
        the job's state is no longer `seen`, htmx is told to reload the whole page."""
        refused = self.pages.guard(request)
        if refused is not None:
            return refused
        job = self.store.get(job_id)
        if job is None or job.state.value != seen or job.state in TERMINAL_STATES:
            return Response(status_code=204, headers={"HX-Refresh": "true"})
        detail = job_detail(job, self.store.events(job_id), state_dir=self.state_dir,
                            board=self._board())
        return self.pages.render(request, "_job_live.html", d=detail)

    async def approve(self, request: Request, job_id: str) -> Response:
        """Approve a job waiting for plan approval: it is queued again."""
        return await self._act(request, job_id, self.store.approve, "approved")

    async def cancel(self, request: Request, job_id: str) -> Response:
        """Cancel a queued, waiting or running job."""
        return await self._act(request, job_id, self.store.cancel, "cancelled")

    async def retry(self, request: Request, job_id: str) -> Response:
        """Queue a failed or dead job again, with a fresh set of attempts."""
        return await self._act(request, job_id, self.store.retry, "retried")

    async def _act(self, request: Request, job_id: str, action: Any, done: str) -> Response:
        fields = await self.pages.signed_in_form(request)
        if isinstance(fields, Response):
            return fields
        if not await run_in_threadpool(action, job_id):
            return self.pages.message(request, 409, f"Not {done}",
                                      f"Job {job_id} is not in a state that can be {done}.")
        await run_in_threadpool(self.store.add_event, job_id, "admin", f"{done} on the admin page")
        return self._go(request, f"/admin/jobs/{job_id}")

    async def edit_spec(self, request: Request, job_id: str) -> Response:
        """Replace the spec of a job waiting for approval, after validating it."""
        fields = await self.pages.signed_in_form(request)
        if isinstance(fields, Response):
            return fields
        text = fields.get("spec", "").replace("\r\n", "\n")
        try:
            spec = load_spec_text(text, source="edited spec")
        except SpecError as exc:
            error = f"{exc.message}\nhint: {exc.hint}" if exc.hint else exc.message
            return await run_in_threadpool(self._job_page, request, job_id, 422,
                                           spec_error=error, spec_draft=text)
        editor = editor_name(fields.get("editor", ""))
        note = f"spec edited by {editor} on the admin page: {len(spec.operations)} operation(s)"
        changes = {EDITED_SPEC_KEY: text, SPEC_AUTHOR_KEY: editor}
        if not await run_in_threadpool(self.store.amend_waiting, job_id, changes, note):
            return self.pages.message(request, 409, "Not edited",
                                      f"Job {job_id} is no longer waiting for approval.")
        return self._go(request, f"/admin/jobs/{job_id}")

    def submit_page(self, request: Request) -> Response:
        """The form to queue an issue against a configured local repository."""
        refused = self.pages.guard(request)
        if refused is not None:
            return refused
        return self.pages.render(request, "submit.html", repos=[str(p) for p in self.local_repos],
                                 submission=secrets.token_urlsafe(12), error="")

    async def submit(self, request: Request) -> Response:
        """Freeze the submitted issue and enqueue a job for `local:/abs/path`."""
        fields = await self.pages.signed_in_form(request)
        if isinstance(fields, Response):
            return fields
        repo, title = fields.get("repo", ""), fields.get("title", "").strip()
        command = JobCommand.PLAN if fields.get("command") == "plan" else JobCommand.RUN
        if repo not in {str(p) for p in self.local_repos} or not title:
            return self.pages.render(request, "submit.html", 400,
                                     repos=[str(p) for p in self.local_repos],
                                     submission=fields.get("submission", ""),
                                     error="Choose a configured repository and give a title.")
        request_ = freeze(repo_full_name=f"local:{repo}", title=title,
                          body=fields.get("body", ""), sender="admin")
        trigger = f"admin:{fields.get('submission', '')}"
        new = NewJob(command=command, request=request_,
                     idempotency_key=idempotency_key(request_, command, trigger))
        job, _created = await run_in_threadpool(self.store.enqueue, new)
        return self._go(request, f"/admin/jobs/{job.id}")

    def static(self, name: str) -> Response:
        """htmx and the stylesheet, shipped with the package."""
        return static_file(name)

    def _bearer_refusal(self, request: Request) -> Response | None:
        """None when the request carries the admin token as a Bearer token; else 401 or 429."""
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return JSONResponse({"error": "sign in or send the admin token as a Bearer token"},
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        right, wait = self._token_check(request, given.strip(), "bearer")
        if wait:
            return JSONResponse({"error": f"too many wrong tokens from this address; try again "
                                          f"in {wait} seconds"}, status_code=429,
                                headers={"Retry-After": str(wait)})
        if not right:
            return JSONResponse({"error": "wrong admin token"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        return None

    def graph(self, request: Request, repo: str, symbol: str) -> Response:
        """`GET /query_graph?repo=...&symbol=...`: definitions, callers and callees as JSON."""
        auth = self.pages.auth
        if auth is None:
            return JSONResponse({"error": "admin pages are disabled",
                                 "hint": f"set {self.pages.token_env}"}, status_code=503)
        if not auth.valid_session(request.cookies.get(SESSION_COOKIE)):
            refused = self._bearer_refusal(request)
            if refused is not None:
                return refused
        try:
            db = graph_path(repo, state_dir=self.state_dir, local_repos=self.local_repos)
            return JSONResponse({"repo": repo, **query_graph(db, symbol)})
        except GraphQueryError as exc:
            return JSONResponse({"error": exc.message, "hint": exc.hint}, status_code=exc.status)
        except DiffuseLLMError as exc:
            return JSONResponse({"error": exc.message, "hint": exc.hint}, status_code=400)


def _routes(router: APIRouter, app: AdminApp) -> None:
    html: dict[str, Any] = {"response_class": HTMLResponse, "include_in_schema": False}
    form: dict[str, Any] = {**html, "methods": ["POST"], "max_body_size": MAX_FORM_BYTES}
    small: dict[str, Any] = {**form, "max_body_size": LOGIN_FORM_BYTES}
    router.add_api_route("/admin", app.index, methods=["GET"], **html)
    router.add_api_route("/admin/login", app.login_page, methods=["GET"], **html)
    router.add_api_route("/admin/login", app.login, **small)
    router.add_api_route("/admin/logout", app.logout, **small)
    router.add_api_route("/admin/jobs", app.jobs, methods=["GET"], **html)
    router.add_api_route("/admin/jobs/rows", app.job_rows, methods=["GET"], **html)
    router.add_api_route("/admin/jobs/{job_id}", app.job, methods=["GET"], **html)
    router.add_api_route("/admin/jobs/{job_id}/live", app.job_live, methods=["GET"], **html)
    router.add_api_route("/admin/jobs/{job_id}/retry", app.retry, **form)
    router.add_api_route("/admin/jobs/{job_id}/approve", app.approve, **form)
    router.add_api_route("/admin/jobs/{job_id}/cancel", app.cancel, **form)
    router.add_api_route("/admin/jobs/{job_id}/spec", app.edit_spec, **form)
    router.add_api_route("/admin/learn", app.learn, methods=["GET"], **html)
    router.add_api_route("/admin/deliveries", app.deliveries.page, methods=["GET"], **html)
    router.add_api_route("/admin/deliveries/{delivery_id}/retry", app.deliveries.retry, **form)
    router.add_api_route("/admin/deliveries/{delivery_id}/discard", app.deliveries.discard, **form)
    router.add_api_route("/admin/submit", app.submit_page, methods=["GET"], **html)
    router.add_api_route("/admin/submit", app.submit, **form)
    router.add_api_route("/admin/static/{name:path}", app.static, methods=["GET"],
                         include_in_schema=False)
    router.add_api_route("/query_graph", app.graph, methods=["GET"], tags=["admin"])


def _web_root(settings: Settings, env: Mapping[str, str]) -> str:
    try:
        return web_root(api_url(settings.github, secrets_from_env(env)))
    except ConfigError:  # a broken key is the worker's and webhooks' concern; links need no key
        return web_root(settings.github.base_url)


def _app_adapters(settings: Settings) -> tuple[str, ...] | None:
    if not settings.server.in_process_worker:
        return None
    return tuple(loaded_adapters(settings.llm))


def admin_router(*, store: AdminStore, settings: Settings,
                 environ: Mapping[str, str] | None = None,
                 local_repos: Sequence[Path] = (),
                 clock: Callable[[], dt.datetime] | None = None,
                 inbox: SpoolInbox | None = None) -> APIRouter:
    """`/admin/...` pages and `GET /query_graph`, behind the admin token.

    The token is read once, from the environment variable `settings.server.admin_token_env`;
    without it every admin page answers 503. `local_repos` are the repositories the submit form
    offers (jobs for `local:/abs/path`) and `/query_graph` may digest; `clock` is the job store's;
    `inbox` is the webhook inbox whose failed deliveries `/admin/deliveries` shows (default: the
    state folder's).
    """
    env = dict(os.environ if environ is None else environ)
    token = settings.server.admin_token(env)
    ended = EndedSessions(settings.state_path() / "admin" / "ended-sessions")
    pages = Pages(env=template_env(), auth=AdminAuth(token, ended=ended) if token else None,
                  token_env=settings.server.admin_token_env)
    desk = DeliveryDesk(pages, inbox or state_inbox(settings.state_path()))
    app = AdminApp(store=store, pages=pages, state_dir=settings.state_path(), deliveries=desk,
                   local_repos=tuple(p.expanduser().resolve() for p in local_repos),
                   web=_web_root(settings, env), clock=clock or _utc_now,
                   app_adapters=_app_adapters(settings))
    router = APIRouter()
    _routes(router, app)
    return router
