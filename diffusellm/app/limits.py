"""Request limits: body size caps per route, a deadline for receiving a body, JSON nesting depth."""

from __future__ import annotations

import re

import anyio
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_BODY_BYTES = 64 * 1024
"""Routes that name no cap of their own take at most this much (no such route needs a body)."""
WORKER_BODY_BYTES = 8 * 1024 * 1024
"""A worker's finish report (result, validation table, warnings) fits easily."""
MAX_JSON_DEPTH = 64
"""Deeper JSON is refused before it is parsed (GitHub's payloads nest about ten levels)."""

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_OPEN, _CLOSE = b"(", b")"
_BRACKETS = bytes.maketrans(b"[{]}", b"(())")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def json_too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when `body` nests arrays and objects deeper than `limit` (strings do not count).

    Runs in C-speed passes: strings are cut out, every bracket becomes `(` or `)`, and each pass
    removes the innermost pairs; a pair left after `limit` passes lies deeper than `limit`. Call it
    only after the sender was authenticated: a body of nothing but brackets costs `limit` passes.
    """
    shape = _STRING.sub(b"", body).translate(_BRACKETS, _NOT_BRACKETS)
    if shape.count(_OPEN) <= limit:
        return False
    for _ in range(limit):
        if not shape:
            return False
        shorter = shape.replace(_OPEN + _CLOSE, b"")
        if len(shorter) == len(shape):
            return False  # unbalanced leftovers: the JSON parser reports them
        shape = shorter
    return _OPEN + _CLOSE in shape


def too_deep_detail(limit: int = MAX_JSON_DEPTH) -> str:
    """The reason given with a 400 for JSON nested too deeply."""
    return f"the JSON body nests deeper than {limit} levels"


class BodyDeadline:
    """ASGI middleware: a request whose body has not fully arrived `seconds` after the request
    began is answered 408 (a client trickling bytes cannot hold a connection and its buffer)."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = anyio.current_time() + self.seconds
        complete = False
        started = False

        async def timed_receive() -> Message:
            nonlocal complete
            if complete:
                return await receive()
            with anyio.move_on_after(max(0.0, deadline - anyio.current_time())):
                message = await receive()
                complete = message["type"] != "http.request" or not message.get("more_body", False)
                return message
            raise HTTPException(408, f"the request body did not arrive within {self.seconds:g} s")

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, timed_receive, watched_send)
        except HTTPException as exc:
            if started or exc.status_code != 408:
                raise
            response = JSONResponse({"detail": exc.detail}, status_code=408,
                                    headers={"Connection": "close"})
            await response(scope, receive, send)
