"""Admin pages, access: admin-token login, signed session cookies ended server-side at logout,
CSRF tokens bound to the session, and the throttle on wrong tokens."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

SESSION_COOKIE = "diffusellm_admin"
CSRF_COOKIE = "diffusellm_csrf"
CSRF_FIELD = "csrf_token"
SESSION_SECONDS = 8 * 3600
_KEY_LABEL = b"diffusellm admin session v1"


def _mac(key: bytes, purpose: str, *parts: str) -> str:
    message = "\x1f".join((purpose, *parts)).encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass
class EndedSessions:
    """Sessions ended at logout before they expired, remembered (in `path`, when given) until then,
    so a copied cookie stops working at logout and stays refused after a restart."""

    path: Path | None = None
    clock: Callable[[], float] = time.time
    _ended: dict[str, int] = field(default_factory=dict[str, int], repr=False)

    def __post_init__(self) -> None:
        if self.path is not None and self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                expires, _, nonce = line.partition(" ")
                if expires.isdigit() and nonce:
                    self._ended[nonce] = int(expires)

    def end(self, nonce: str, expires: int) -> None:
        """Refuse session `nonce` from now until it would have expired anyway."""
        now = self.clock()
        self._ended = {n: e for n, e in self._ended.items() if e > now}
        self._ended[nonce] = expires
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            text = "".join(f"{e} {n}\n" for n, e in self._ended.items())
            spare = self.path.with_suffix(".new")
            spare.write_text(text, encoding="utf-8")
            os.replace(spare, self.path)

    def __contains__(self, nonce: str) -> bool:
        return nonce in self._ended


@dataclass(frozen=True)
class AdminAuth:
    """Checks the admin token and signs and verifies the cookies and tokens derived from it.

    The signing key is derived from the token, so every app instance sharing the token accepts
    the same sessions, and changing the token ends every session.
    """

    token: str
    session_seconds: int = SESSION_SECONDS
    clock: Callable[[], float] = time.time
    ended: EndedSessions = field(default_factory=EndedSessions)
    _key: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        key = hmac.new(_KEY_LABEL, self.token.encode("utf-8"), hashlib.sha256).digest()
        object.__setattr__(self, "_key", key)

    def token_matches(self, given: str) -> bool:
        """Constant-time comparison of a submitted token with the configured one."""
        return hmac.compare_digest(given.encode("utf-8"), self.token.encode("utf-8"))

    def new_session(self) -> str:
        """A session cookie value: expiry, a random nonce (the session's id) and their MAC."""
        expires = str(int(self.clock()) + self.session_seconds)
        nonce = secrets.token_urlsafe(16)
        return f"{expires}.{nonce}.{_mac(self._key, 'session', expires, nonce)}"

    def _session(self, value: str | None) -> tuple[int, str] | None:
        parts = (value or "").split(".")
        if len(parts) != 3 or not parts[0].isdigit():
            return None
        expires, nonce, mac = parts
        if not hmac.compare_digest(mac, _mac(self._key, "session", expires, nonce)):
            return None
        if int(expires) <= self.clock() or nonce in self.ended:
            return None
        return int(expires), nonce

    def valid_session(self, value: str | None) -> bool:
        """True for an unexpired session cookie this token signed and no logout ended."""
        return self._session(value) is not None

    def end_session(self, value: str | None) -> None:
        """Logout: the session is refused from now on, wherever its cookie was copied to."""
        session = self._session(value)
        if session is not None:
            self.ended.end(session[1], session[0])

    def session_csrf(self, value: str | None) -> str | None:
        """The CSRF token of a valid session (a MAC of its id): a page that can set cookies on this
        site still cannot know it. None without a valid session."""
        session = self._session(value)
        return None if session is None else _mac(self._key, "csrf-session", session[1])

    def session_csrf_passes(self, session: str | None, submitted: str | None) -> bool:
        """The form's token is the one bound to this (valid) session."""
        expected = self.session_csrf(session)
        return bool(expected and submitted) and hmac.compare_digest(
            str(expected).encode("utf-8"), str(submitted).encode("utf-8"))

    def new_csrf(self) -> str:
        """A login form's CSRF token (no session yet): a random nonce and its MAC."""
        nonce = secrets.token_urlsafe(16)
        return f"{nonce}.{_mac(self._key, 'csrf', nonce)}"

    def valid_csrf(self, value: str | None) -> bool:
        """True when `value` is a login CSRF token this token signed."""
        nonce, _, mac = (value or "").partition(".")
        return bool(nonce and mac) and hmac.compare_digest(mac, _mac(self._key, "csrf", nonce))

    def csrf_passes(self, cookie: str | None, submitted: str | None) -> bool:
        """Login form (double submit): the form's token equals the cookie's, which is genuine."""
        if not cookie or not submitted or not self.valid_csrf(cookie):
            return False
        return hmac.compare_digest(cookie.encode("utf-8"), submitted.encode("utf-8"))


@dataclass
class LoginThrottle:
    """Wrong admin tokens per client address: after `max_failures` within `window_seconds`, further
    tries from that address are refused until the oldest failure leaves the window (guessing the
    token online becomes hopeless; a person who mistyped waits a minute)."""

    max_failures: int = 5
    window_seconds: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, list[float]] = field(default_factory=dict[str, list[float]], repr=False)

    def _recent(self, client: str) -> list[float]:
        now = self.clock()
        recent = [t for t in self._failures.get(client, []) if now - t < self.window_seconds]
        if recent:
            self._failures[client] = recent
        else:
            self._failures.pop(client, None)
        return recent

    def wait_seconds(self, client: str) -> int:
        """0 when `client` may try a token now, else how many seconds until it may."""
        recent = self._recent(client)
        if len(recent) < self.max_failures:
            return 0
        return max(1, int(recent[-self.max_failures] + self.window_seconds - self.clock() + 0.999))

    def failed(self, client: str) -> None:
        """Count one wrong token from `client`."""
        self._failures.setdefault(client, []).append(self.clock())
        if len(self._failures) > 10_000:  # a flood of addresses: forget the quiet ones
            for quiet in [c for c in self._failures if not self._recent(c)]:
                self._failures.pop(quiet, None)

    def succeeded(self, client: str) -> None:
        """Forget `client`'s failures."""
        self._failures.pop(client, None)
