"""The admin page for webhook deliveries that triage could not finish: why, when, what next."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from diffusellm.app.admin.pages import Pages, base_path
from diffusellm.app.inbox import DeliveryStatus, InboxSummary, SpoolInbox, valid_delivery_id


@dataclass(frozen=True)
class DeliveryRow:
    """One failed delivery as the page shows it."""

    delivery_id: str
    event: str
    attempts: int
    error: str
    failed_at: str
    next_step: str
    dead: bool


def _when(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def delivery_row(delivery_id: str, event: str, status: DeliveryStatus, now: float) -> DeliveryRow:
    """What a person needs to decide about one failed delivery."""
    if status.retry_at is None:
        next_step = "none: kept until you retry or discard it"
    else:
        wait = max(0, round(status.retry_at - now))
        next_step = f"tried again in {wait} s" if wait else "tried again on the next pass"
    return DeliveryRow(delivery_id, event, status.attempts, status.error, _when(status.failed_at),
                       next_step, status.dead)


@dataclass(frozen=True)
class DeliveryDesk:
    """`/admin/deliveries`: the inbox's waiting, retrying and dead deliveries, with Retry and Discard."""

    pages: Pages
    inbox: SpoolInbox
    clock: Callable[[], float] = time.time

    def summary(self) -> InboxSummary:
        """The inbox now (also shown as a notice on the job list)."""
        return self.inbox.summary(self.clock())

    def page(self, request: Request) -> Response:
        """The counts, then every failed delivery, newest failure first."""
        refused = self.pages.guard(request)
        if refused is not None:
            return refused
        summary = self.summary()
        rows = [delivery_row(d, e, s, self.clock()) for d, e, s in summary.failures]
        return self.pages.render(request, "deliveries.html", summary=summary, rows=rows)

    async def retry(self, request: Request, delivery_id: str) -> Response:
        """Clear the delivery's failures: the next recovery pass triages it with fresh attempts."""
        return await self._act(request, delivery_id, self.inbox.forget_failures, "retried")

    async def discard(self, request: Request, delivery_id: str) -> Response:
        """Delete the delivery from the inbox: nobody will triage it."""
        return await self._act(request, delivery_id, self._discard, "discarded")

    def _discard(self, delivery_id: str) -> bool:
        if not self.inbox.forget_failures(delivery_id):
            return False
        self.inbox.done(delivery_id)
        return True

    async def _act(self, request: Request, delivery_id: str, action: Callable[[str], bool],
                   done: str) -> Response:
        fields = await self.pages.signed_in_form(request)
        if isinstance(fields, Response):
            return fields
        if not valid_delivery_id(delivery_id) or not await run_in_threadpool(action, delivery_id):
            return self.pages.message(request, 404, f"Not {done}",
                                      f"No delivery {delivery_id} is waiting in the inbox; it may have "
                                      "been triaged or discarded meanwhile.")
        return RedirectResponse(f"{base_path(request)}/admin/deliveries", status_code=303)
