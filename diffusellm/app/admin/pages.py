"""Admin pages, plumbing: templates, security headers, the login guard and same-origin, CSRF-checked forms."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jinja2
from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from diffusellm.app.admin.auth import CSRF_COOKIE, CSRF_FIELD, SESSION_COOKIE, AdminAuth

HERE = Path(__file__).resolve().parents[1]  # app/: templates and static files
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
STATIC_TYPES = {
    "htmx.min.js": "text/javascript", "admin.css": "text/css", "charts.js": "text/javascript",
    "vendor/uPlot.iife.min.js": "text/javascript", "vendor/uPlot.min.css": "text/css",
}
MAX_FORM_BYTES = 256 * 1024
"""Admin forms (a spec edit is the largest); the routes refuse bigger bodies while they stream."""
LOGIN_FORM_BYTES = 4 * 1024
"""The login form carries only the token and its CSRF token."""
_SECURITY_HEADERS = {
    # Scripts and styles come only from /admin/static: an injected <script> would not run.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def template_env() -> jinja2.Environment:
    """The admin templates, with HTML autoescaping on for every template."""
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True,
                              lstrip_blocks=True)


def base_path(request: Request) -> str:
    """The prefix a reverse proxy mounts the app under (uvicorn --root-path), usually ""."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_cookie(response: Response, request: Request, name: str, value: str,
               max_age: int | None = None) -> None:
    """An HttpOnly, SameSite=Strict cookie for the whole app; Secure when served over HTTPS."""
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True,
                        samesite="strict", secure=_secure(request))


@dataclass(frozen=True)
class Pages:
    """Renders admin pages; `auth` is None when no admin token is configured."""

    env: jinja2.Environment
    auth: AdminAuth | None
    token_env: str

    def render(self, request: Request, name: str, status: int = 200,
               **data: Any) -> HTMLResponse:
        """Render template `name` with the CSRF token its forms carry: the session's own token when
        signed in, else a login token kept in a cookie (double submit)."""
        session = self.auth.session_csrf(request.cookies.get(SESSION_COOKIE)) if self.auth else None
        signed_in = session is not None
        csrf = session or request.cookies.get(CSRF_COOKIE)
        fresh = self.auth is not None and not signed_in and not self.auth.valid_csrf(csrf)
        if fresh and self.auth is not None:
            csrf = self.auth.new_csrf()
        html = self.env.get_template(name).render(
            base=base_path(request), csrf=csrf or "", csrf_field=CSRF_FIELD,
            signed_in=signed_in, **data)
        response = HTMLResponse(html, status_code=status, headers=_SECURITY_HEADERS)
        if fresh and csrf:
            set_cookie(response, request, CSRF_COOKIE, csrf)
        return response

    def message(self, request: Request, status: int, title: str, text: str) -> HTMLResponse:
        """A page that only says something (errors, refusals)."""
        return self.render(request, "message.html", status, title=title, text=text)

    def disabled(self, request: Request) -> HTMLResponse:
        """The 503 page shown while no admin token is configured."""
        return self.render(request, "disabled.html", 503, token_env=self.token_env)

    def guard(self, request: Request) -> Response | None:
        """None for a signed-in admin; else the page to answer with (503, or off to log in)."""
        if self.auth is None:
            return self.disabled(request)
        if self.auth.valid_session(request.cookies.get(SESSION_COOKIE)):
            return None
        login = f"{base_path(request)}/admin/login"
        if request.headers.get("hx-request"):
            # htmx swaps the body of a redirect into the page; tell it to navigate instead.
            return Response(status_code=401, headers={"HX-Redirect": login})
        return RedirectResponse(login, status_code=303)

    async def signed_in_form(self, request: Request) -> dict[str, str] | Response:
        """`form` for a signed-in admin only: the refusal `guard` gives, or the form's fields."""
        refused = self.guard(request)
        return refused if refused is not None else await self.form(request)

    async def form(self, request: Request) -> dict[str, str] | Response:
        """The posted form's fields (first value each), or the refusal: 403 for a post from another
        site (judged before the body is read), 413, or 403 when the CSRF token is missing or wrong
        (also for bodies that are not url-encoded forms)."""
        if self.auth is None:
            return self.disabled(request)
        foreign = cross_site(request)
        if foreign:
            return self.message(request, 403, "Form from another site", foreign)
        body = await request.body()  # the route's max_body_size caps it (413) while it streams
        if len(body) > MAX_FORM_BYTES:
            return self.message(request, 413, "Form too large", "Forms are limited to 256 KiB.")
        fields = _fields(body) if _is_form(request) else {}
        if fields is None:
            return self.message(request, 413, "Form too large", "The form has too many fields.")
        session = request.cookies.get(SESSION_COOKIE)
        if self.auth.valid_session(session):
            passes = self.auth.session_csrf_passes(session, fields.get(CSRF_FIELD))
        else:
            passes = self.auth.csrf_passes(request.cookies.get(CSRF_COOKIE), fields.get(CSRF_FIELD))
        if not passes:
            return self.message(request, 403, "Form expired or forged",
                                "The form's security token is missing or wrong. Reload the page "
                                "and submit it again.")
        return fields


def cross_site(request: Request) -> str:
    """Why a state-changing request looks sent by another site's page, or "" when it does not.

    Browsers send Sec-Fetch-Site and Origin on posts: anything but same-origin (or a person
    typing, "none") is refused, as is an Origin whose host is not this request's Host (the scheme
    is not compared: behind a proxy that is not trusted for X-Forwarded-Proto the app sees http).
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None and site.lower() not in ("same-origin", "none"):
        return f"This form was sent from another site (Sec-Fetch-Site: {site})."
    origin = request.headers.get("origin")
    if origin is None:
        return ""
    host = urlsplit(origin).netloc.lower() if origin != "null" else ""
    if not host or host != request.headers.get("host", "").lower():
        return f"This form was sent from another origin ({origin})."
    return ""


def _is_form(request: Request) -> bool:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return kind == "application/x-www-form-urlencoded"


def _fields(body: bytes) -> dict[str, str] | None:
    """First value of each field of a url-encoded body; None past 50 fields."""
    try:
        parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True,
                          max_num_fields=50)
    except ValueError:
        return None
    return {key: values[0] for key, values in parsed.items()}


def static_file(name: str) -> Response:
    """One of the shipped static files (a fixed list: no path from the request reaches the disk)."""
    media = STATIC_TYPES.get(name)
    if media is None:
        return Response("not found", status_code=404, media_type="text/plain")
    headers = {"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}
    return Response((STATIC / name).read_bytes(), media_type=media, headers=headers)
