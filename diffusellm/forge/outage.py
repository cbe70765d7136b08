"""Outages: connection errors, DNS failures, timeouts and 5xx told apart from refusals, in words."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import requests
import urllib3.exceptions

from diffusellm.forge.base import ForgeError


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and everything that caused it: __cause__, __context__, urllib3's `reason`, wrapped args."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        todo += [e for e in linked if isinstance(e, BaseException)]


def _host(exc: BaseException) -> str:
    for link in _chain(exc):
        request = getattr(link, "request", None)
        url = getattr(request, "url", None)
        if url is not None:
            return urlsplit(str(url)).hostname or ""
        pool = getattr(link, "pool", None)
        if pool is not None and getattr(pool, "host", None):
            return str(pool.host)
    return ""


def outage_reason(exc: BaseException) -> str | None:
    """A short readable reason when `exc` is a network outage worth retrying, else None.

    DNS failure, connection refused or reset, timeout, or a server that kept answering 5xx
    (urllib3's retries ran out) -- looked for in the whole chain of causes.
    """
    chain = list(_chain(exc))
    host = _host(exc)
    where = f" ({host})" if host else ""
    if any(isinstance(e, (socket.gaierror, urllib3.exceptions.NameResolutionError)) for e in chain):
        return f"DNS lookup failed{where}"
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return f"connection refused{where}"
    if any(isinstance(e, ConnectionResetError) for e in chain):
        return f"connection reset{where}"
    # urllib3's NewConnectionError is a ConnectTimeoutError by inheritance only.
    if any(isinstance(e, (TimeoutError, requests.Timeout, httpx.TimeoutException, urllib3.exceptions.TimeoutError))
           and not isinstance(e, urllib3.exceptions.NewConnectionError) for e in chain):
        return f"timed out{where}"
    if any(isinstance(e, (requests.exceptions.RetryError, urllib3.exceptions.ResponseError)) for e in chain):
        return f"the server kept answering with errors (5xx){where}"
    if any(isinstance(e, (ConnectionError, requests.ConnectionError, httpx.TransportError,
                          urllib3.exceptions.ProtocolError, urllib3.exceptions.NewConnectionError))
           for e in chain):
        return f"connection failed{where}"
    return None


def outage_error(exc: BaseException, what: str) -> ForgeError | None:
    """A retryable ForgeError naming the request, when `exc` is an outage; else None."""
    reason = outage_reason(exc)
    if reason is None:
        return None
    return ForgeError(f"GitHub unreachable while {what}: {reason}", retryable=True,
                      hint="retried with back-off; check the network path to GitHub (or GHE_HOST)")
