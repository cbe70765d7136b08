"""Triage of stored deliveries: now for a new one, in the background for leftovers and retries."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog

from diffusellm.app.inbox import DeliveryStatus, SpoolInbox
from diffusellm.app.metrics import Metrics
from diffusellm.app.router import EventRouter, WebhookEvent
from diffusellm.errors import ConfigError, DiffuseLLMError
from diffusellm.forge.base import ForgeError
from diffusellm.forge.outage import outage_reason
from diffusellm.jobs.model import JobStore

log = structlog.get_logger(__name__)
MAX_BACKOFF_S = 1800.0


def _why(exc: Exception) -> tuple[str, bool]:
    """(readable reason, worth retrying): outages, 5xx, rate limits and missing App settings are."""
    reason = outage_reason(exc)
    if reason is not None:
        return f"GitHub unreachable: {reason}", True
    if isinstance(exc, ForgeError):
        return exc.message, exc.retryable
    if isinstance(exc, ConfigError):  # the operator can fix it (APP_ID, key); keep trying until then
        return exc.message, True
    if isinstance(exc, DiffuseLLMError):
        return exc.message, False
    return f"internal error: {type(exc).__name__}: {exc}", False


class InboxTriage:
    """Runs triage for inbox deliveries, each at most once at a time; failures are retried with
    back-off (`retry_base_s` doubling to 30 min) and after `max_attempts` the delivery is dead."""

    def __init__(self, store: JobStore, events: EventRouter, inbox: SpoolInbox, counters: Metrics, *,
                 retry_base_s: float = 30.0, max_attempts: int = 8,
                 clock: Callable[[], float] = time.time) -> None:
        self._store, self._events, self._inbox, self._counters = store, events, inbox, counters
        self._base, self._max_attempts, self._clock = retry_base_s, max_attempts, clock
        self._busy: set[str] = set()
        self._lock = threading.Lock()

    def process(self, event: WebhookEvent) -> str:
        """Triage one stored delivery: `done`, `retry`, `dead`, or `busy` (another thread has it)."""
        with self._lock:
            if event.delivery_id in self._busy:
                return "busy"
            self._busy.add(event.delivery_id)
        try:
            outcome = self._dispatch(event)
        finally:
            with self._lock:
                self._busy.discard(event.delivery_id)
        self._counters.triage.labels(event=event.key, outcome=outcome).inc()
        return outcome

    def _dispatch(self, event: WebhookEvent) -> str:
        bound = log.bind(delivery=event.delivery_id, webhook=event.key)
        try:
            self._events.dispatch(event)
        except Exception as exc:  # kept in the inbox; the next delivery goes on
            return self._failed(event, exc, bound)
        self._inbox.done(event.delivery_id)
        bound.info("webhook.triaged")
        return "done"

    def _failed(self, event: WebhookEvent, exc: Exception, bound: structlog.stdlib.BoundLogger) -> str:
        reason, retry = _why(exc)
        before = self._inbox.status(event.delivery_id)
        attempts = (before.attempts if before else 0) + 1
        now = self._clock()
        if retry and attempts < self._max_attempts:
            delay = min(self._base * 2 ** (attempts - 1), MAX_BACKOFF_S)
            self._inbox.record_failure(event.delivery_id, DeliveryStatus(attempts, reason, now, now + delay))
            bound.warning("webhook.triage_retry", reason=reason, attempt=attempts, retry_in_s=delay)
            return "retry"
        if retry:
            reason = f"gave up after {attempts} attempts: {reason}"
        self._inbox.record_failure(event.delivery_id, DeliveryStatus(attempts, reason, now, None))
        if retry or isinstance(exc, DiffuseLLMError):
            bound.error("webhook.triage_dead", reason=reason)
        else:
            bound.exception("webhook.triage_dead", reason=reason)
        return "dead"

    def due(self) -> list[WebhookEvent]:
        """Deliveries to try now: never tried, or whose back-off has passed (dead ones never)."""
        now = self._clock()
        out: list[WebhookEvent] = []
        for event in self._inbox.pending():
            status = self._inbox.status(event.delivery_id)
            if status is None or (status.retry_at is not None and status.retry_at <= now):
                out.append(event)
        return out

    def recover(self, stop: threading.Event | None = None) -> int:
        """One pass over the due deliveries (blocking); how many were triaged to the end."""
        done = 0
        for event in self.due():
            if stop is not None and stop.is_set():
                break
            self._store.record_delivery(event.delivery_id)  # new if the process died between put and record
            done += self.process(event) == "done"
        return done


class InboxRecovery:
    """The background thread of `InboxTriage`: a pass at start, then one every `interval_s`.

    Started after the app's start-up, so the port answers while leftovers are triaged.
    """

    def __init__(self, triage: InboxTriage, interval_s: float) -> None:
        self._triage, self._interval = triage, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="diffusellm-inbox-recovery", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._triage.recover(self._stop)
            except Exception:  # the store may be down; next round
                log.exception("webhook.recovery_failed")
            self._stop.wait(self._interval)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self, wait_s: float = 5.0) -> None:
        """Ask it to stop after the delivery in hand; a daemon thread, so exit never waits longer."""
        self._stop.set()
        self._thread.join(wait_s)
