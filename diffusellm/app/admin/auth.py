"""Admin pages, access: admin-token login, signed session cookie, double-submit CSRF tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

SESSION_COOKIE = "diffusellm_admin"
CSRF_COOKIE = "diffusellm_csrf"
CSRF_FIELD = "csrf_token"
SESSION_SECONDS = 8 * 3600
_KEY_LABEL = b"diffusellm admin session v1"


def _mac(key: bytes, purpose: str, *parts: str) -> str:
    message = "\x1f".join((purpose, *parts)).encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class AdminAuth:
    """Checks the admin token and signs and verifies the cookies derived from it.

    The signing key is derived from the token, so every app instance sharing the token accepts
    the same sessions, and changing the token ends every session.
    """

    token: str
    session_seconds: int = SESSION_SECONDS
    clock: Callable[[], float] = time.time
    _key: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        key = hmac.new(_KEY_LABEL, self.token.encode("utf-8"), hashlib.sha256).digest()
        object.__setattr__(self, "_key", key)

    def token_matches(self, given: str) -> bool:
        """Constant-time comparison of a submitted token with the configured one."""
        return hmac.compare_digest(given.encode("utf-8"), self.token.encode("utf-8"))

    def new_session(self) -> str:
        """A session cookie value: expiry, a random nonce and their MAC."""
        expires = str(int(self.clock()) + self.session_seconds)
        nonce = secrets.token_urlsafe(16)
        return f"{expires}.{nonce}.{_mac(self._key, 'session', expires, nonce)}"

    def valid_session(self, value: str | None) -> bool:
        """True for an unexpired session cookie this token signed."""
        parts = (value or "").split(".")
        if len(parts) != 3 or not parts[0].isdigit():
            return False
        expires, nonce, mac = parts
        if not hmac.compare_digest(mac, _mac(self._key, "session", expires, nonce)):
            return False
        return int(expires) > self.clock()

    def new_csrf(self) -> str:
        """A CSRF token: a random nonce and its MAC (a signed double-submit token)."""
        nonce = secrets.token_urlsafe(16)
        return f"{nonce}.{_mac(self._key, 'csrf', nonce)}"

    def valid_csrf(self, value: str | None) -> bool:
        """True when `value` is a CSRF token this token signed."""
        nonce, _, mac = (value or "").partition(".")
        return bool(nonce and mac) and hmac.compare_digest(mac, _mac(self._key, "csrf", nonce))

    def csrf_passes(self, cookie: str | None, submitted: str | None) -> bool:
        """Double submit: the form's token equals the cookie's, and the cookie's is genuine."""
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
