"""Webhook event routing, Probot style: `on("issues.labeled")` registers a handler for one event."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class WebhookEvent:
    """One verified delivery: the X-GitHub-Event name, the payload's action and the payload."""

    name: str
    delivery_id: str
    payload: dict[str, Any]

    @property
    def action(self) -> str | None:
        """The payload's `action` (absent for ping and push)."""
        value = self.payload.get("action")
        return value if isinstance(value, str) else None

    @property
    def key(self) -> str:
        """`name.action`, or `name` when there is no action."""
        return f"{self.name}.{self.action}" if self.action else self.name


Handler = Callable[[WebhookEvent], None]


class EventRouter:
    """Maps `event` and `event.action` keys to handlers; a bare event name matches every action."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = {}

    def on(self, *keys: str) -> Callable[[Handler], Handler]:
        """Decorator: `@router.on("issue_comment.created")`."""

        def register(handler: Handler) -> Handler:
            for key in keys:
                self.add(key, handler)
            return handler

        return register

    def add(self, key: str, handler: Handler) -> None:
        """Register `handler` for `key` (`issues` or `issues.labeled`)."""
        if not key or key.count(".") > 1:
            raise ValueError(f"bad event key {key!r}: write `event` or `event.action`")
        self._handlers.setdefault(key, []).append(handler)

    def handlers_for(self, event: WebhookEvent) -> list[Handler]:
        """Handlers of `name.action` first, then those of the bare `name`."""
        exact = self._handlers.get(event.key, []) if event.action else []
        return [*exact, *self._handlers.get(event.name, [])]

    def handles(self, event: WebhookEvent) -> bool:
        """Whether any handler would run for `event`."""
        return bool(self.handlers_for(event))

    def dispatch(self, event: WebhookEvent) -> int:
        """Run every matching handler in registration order; returns how many ran."""
        handlers = self.handlers_for(event)
        for handler in handlers:
            target = getattr(handler, "func", handler)  # functools.partial: name its function
            log.debug("webhook.dispatch", delivery=event.delivery_id, webhook=event.key,
                      handler=getattr(target, "__name__", type(target).__name__))
            handler(event)
        return len(handlers)
