"""Webhook receiver: verify the HMAC, drop replays, persist the delivery, 202, triage after."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import structlog
from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from diffusellm.app.inbox import Inbox, valid_delivery_id
from diffusellm.app.limits import json_too_deep, too_deep_detail
from diffusellm.app.router import EventRouter, WebhookEvent
from diffusellm.jobs.model import JobStore

log = structlog.get_logger(__name__)
PATH = "/webhooks/github"
MAX_BODY_BYTES = 25 * 1024 * 1024
"""GitHub caps payloads at 25 MB and does not deliver bigger ones."""


def signature_for(secret: str, body: bytes) -> str:
    """The X-Hub-Signature-256 value GitHub sends for `body`: `sha256=` + hex HMAC-SHA256."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """Constant-time check of X-Hub-Signature-256 over the raw body.

    https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
    """
    if not secret or not header or not header.startswith("sha256="):
        return False
    return hmac.compare_digest(signature_for(secret, body), header.strip())


def _refuse(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"status": "refused", "reason": reason}, status_code=status)


def _check_headers(headers: Any) -> JSONResponse | None:
    """What can be refused before a byte of the body is read: no signature, no event or delivery id."""
    if headers.get("x-hub-signature-256") is None:
        if headers.get("x-hub-signature") is not None:
            return _refuse(401, "only X-Hub-Signature (sha1) given; X-Hub-Signature-256 needed")
        return _refuse(401, "missing X-Hub-Signature-256")
    name, delivery = headers.get("x-github-event"), headers.get("x-github-delivery")
    if not name or not delivery or not valid_delivery_id(delivery):
        return _refuse(400, "missing or malformed X-GitHub-Event / X-GitHub-Delivery")
    return None


def _parse(secret: str, body: bytes, headers: Any) -> WebhookEvent | JSONResponse:
    if len(body) > MAX_BODY_BYTES or not verify_signature(secret, body, headers.get("x-hub-signature-256")):
        return _refuse(401, "signature does not match")
    if json_too_deep(body):
        return _refuse(400, too_deep_detail())
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return _refuse(400, "body is not JSON")
    if not isinstance(payload, dict):
        return _refuse(400, "body is not a JSON object")
    name, delivery = str(headers.get("x-github-event")), str(headers.get("x-github-delivery"))
    return WebhookEvent(name=name, delivery_id=delivery, payload=dict(payload))  # pyright: ignore[reportUnknownArgumentType]


def _accept(store: JobStore, inbox: Inbox, event: WebhookEvent) -> bool:
    """Persist, then dedupe. Stored first so a crash between the two loses nothing; a replay
    arriving while the original waits meets the inbox entry, a later one the store's record."""
    if not inbox.put(event):
        return False
    if not store.record_delivery(event.delivery_id):
        inbox.done(event.delivery_id)
        return False
    return True


def process(events: EventRouter, inbox: Inbox, event: WebhookEvent) -> None:
    """Triage one stored delivery; it stays in the inbox if a handler fails (retried on restart)."""
    bound = log.bind(delivery=event.delivery_id, webhook=event.key)
    try:
        events.dispatch(event)
    except Exception:  # kept in the inbox for recover(); the next delivery goes on
        bound.exception("webhook.triage_failed")
        return
    inbox.done(event.delivery_id)
    bound.info("webhook.triaged")


def recover(store: JobStore, events: EventRouter, inbox: Inbox) -> int:
    """Triage deliveries a previous process accepted but did not finish; call once at start-up."""
    leftovers = inbox.pending()
    for event in leftovers:
        store.record_delivery(event.delivery_id)  # may be new if we died between put and record
        process(events, inbox, event)
    return len(leftovers)


def webhook_router(
    *,
    store: JobStore,
    secret: str | None,
    events: EventRouter,
    inbox: Inbox,
    schedule: Callable[[BackgroundTasks, Callable[[], None]], None] | None = None,
    triage: Callable[[WebhookEvent], object] | None = None,
    count: Callable[[str, str], None] | None = None,
) -> APIRouter:
    """`POST /webhooks/github`: 202 once the delivery is stored; triage runs after the response.

    `schedule` decides where triage runs (default: FastAPI background task in the thread pool);
    `triage` triages one stored delivery (default: `process`); `count(event, outcome)` hears of
    every delivery (outcome accepted, ignored, duplicate or rejected).
    """
    router = APIRouter()

    def default_schedule(background: BackgroundTasks, job: Callable[[], None]) -> None:
        background.add_task(job)

    run_later = schedule or default_schedule

    def triage_one(event: WebhookEvent) -> None:
        if triage is None:
            process(events, inbox, event)
        else:
            triage(event)

    def said(event: str, outcome: str, answer: JSONResponse) -> JSONResponse:
        if count is not None:  # refused requests are counted as event "unverified": their headers are not trusted
            count(event, outcome)
        return answer

    # GitHub's own cap, enforced by Content-Length and again while the body streams in (413).
    @router.post(PATH, status_code=202, max_body_size=MAX_BODY_BYTES)
    async def receive(request: Request, background: BackgroundTasks) -> JSONResponse:  # pyright: ignore[reportUnusedFunction]
        if not secret:
            return said("unverified", "rejected", _refuse(403, "no webhook secret is configured; set WEBHOOK_SECRET"))
        refusal = _check_headers(request.headers)
        if refusal is not None:
            return said("unverified", "rejected", refusal)
        body = await request.body()
        parsed = await run_in_threadpool(_parse, secret, body, request.headers)
        if isinstance(parsed, JSONResponse):
            return said("unverified", "rejected", parsed)
        if not events.handles(parsed):
            return said(parsed.name, "ignored",
                        JSONResponse({"status": "ignored", "event": parsed.key}, status_code=202))
        if not await run_in_threadpool(_accept, store, inbox, parsed):
            log.info("webhook.replay", delivery=parsed.delivery_id)
            return said(parsed.name, "duplicate", JSONResponse(
                {"status": "duplicate", "delivery": parsed.delivery_id}, status_code=202))
        run_later(background, lambda: triage_one(parsed))
        return said(parsed.name, "accepted", JSONResponse(
            {"status": "accepted", "delivery": parsed.delivery_id}, status_code=202))

    return router
