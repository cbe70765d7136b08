"""Webhook inbox: verified deliveries kept on disk from before the 202 until triage is done."""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from diffusellm.app.router import WebhookEvent
from diffusellm.errors import ConfigError

_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class Inbox(Protocol):
    """Durable hand-over between the webhook endpoint and the triage that follows it."""

    def put(self, event: WebhookEvent) -> bool:
        """Store `event` durably; False when a delivery with that id is already waiting."""
        ...

    def pending(self) -> list[WebhookEvent]:
        """Deliveries stored but not marked done, oldest first (after a crash: the leftovers)."""
        ...

    def done(self, delivery_id: str) -> None:
        """Forget a delivery once it is fully handled (or was a replay)."""
        ...


@dataclass(frozen=True)
class DeliveryStatus:
    """Why a delivery is still in the inbox: its failed triage attempts and what comes next."""

    attempts: int
    error: str
    failed_at: float
    retry_at: float | None
    """When to try again (epoch seconds); None: dead, kept for a person to look at."""

    @property
    def dead(self) -> bool:
        """No more automatic retries."""
        return self.retry_at is None


@dataclass(frozen=True)
class InboxSummary:
    """What the inbox holds, for metrics and the admin page."""

    waiting: int
    """Deliveries not tried yet (just accepted, or left by a previous process)."""
    retrying: int
    """Deliveries whose triage failed and will be tried again."""
    dead: int
    """Deliveries given up on: they stay on disk with their reason."""
    oldest_age_s: float
    """Age of the oldest delivery still in the inbox (0 when empty)."""
    failures: list[tuple[str, str, DeliveryStatus]]
    """(delivery id, event key, status) of every failed delivery, newest failure first."""


def state_inbox(state_dir: Path) -> SpoolInbox:
    """The app's inbox: the `inbox` folder of the state folder."""
    return SpoolInbox(state_dir / "inbox")


def valid_delivery_id(delivery_id: str) -> bool:
    """GitHub's delivery ids are GUIDs; anything usable as a file name of that shape is accepted."""
    return bool(_SAFE_ID.match(delivery_id))


class SpoolInbox:
    """An `Inbox` in a folder: one JSON file per delivery, written with fsync and an atomic link.

    Files, not the job store: a delivery is not a job yet (the permission check decides that), and a
    folder needs no schema shared with the store; a single-host app restarts on the same disk.
    """

    def __init__(self, directory: Path) -> None:
        self._dir = directory
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the webhook inbox {directory}: {exc.strerror}",
                              hint="point the inbox at a writable folder") from None

    def _path(self, delivery_id: str) -> Path:
        if not valid_delivery_id(delivery_id):
            raise ValueError(f"unsafe delivery id {delivery_id!r}")
        return self._dir / f"{delivery_id}.json"

    def put(self, event: WebhookEvent) -> bool:
        """Write a temporary file, fsync, link it under its final name (fails if present)."""
        final = self._path(event.delivery_id)
        data = json.dumps({"name": event.name, "delivery_id": event.delivery_id,
                           "payload": event.payload}).encode("utf-8")
        fd, tmp = tempfile.mkstemp(dir=self._dir, prefix=".incoming-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(tmp, final)
            except FileExistsError:
                return False
            self._sync_dir()
            return True
        finally:
            os.unlink(tmp)

    def _sync_dir(self) -> None:
        fd = os.open(self._dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def pending(self) -> list[WebhookEvent]:
        """Every stored delivery, oldest first; unreadable files are skipped (left for a human)."""
        return [event for _, event in self._stored()]

    def _stored(self) -> list[tuple[float, WebhookEvent]]:
        """Each readable stored delivery with its arrival time, oldest first.

        Triage deletes files while this lists them (recovery runs beside the metrics scrape),
        so a file that is gone by the time it is looked at is simply not pending any more.
        """
        found: list[tuple[float, Path]] = []
        for path in self._dir.glob("*.json"):
            with contextlib.suppress(FileNotFoundError):
                found.append((path.stat().st_mtime, path))
        events: list[tuple[float, WebhookEvent]] = []
        for arrived, path in sorted(found, key=lambda item: (item[0], item[1].name)):
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
                events.append((arrived, WebhookEvent(name=str(raw["name"]), delivery_id=str(raw["delivery_id"]),
                                                     payload=dict(raw["payload"]))))
        return events

    def done(self, delivery_id: str) -> None:
        """Delete the delivery's file (and its status); a missing file is fine."""
        with contextlib.suppress(FileNotFoundError):
            self._path(delivery_id).unlink()
        with contextlib.suppress(FileNotFoundError):
            self._status_path(delivery_id).unlink()

    def forget_failures(self, delivery_id: str) -> bool:
        """Clear a delivery's failed attempts so the next recovery pass triages it afresh;
        False when no such delivery is stored (it was triaged or discarded meanwhile)."""
        if not self._path(delivery_id).exists():
            return False
        with contextlib.suppress(FileNotFoundError):
            self._status_path(delivery_id).unlink()
        return True

    def _status_path(self, delivery_id: str) -> Path:
        return self._path(delivery_id).with_suffix(".status")

    def record_failure(self, delivery_id: str, status: DeliveryStatus) -> None:
        """Remember a failed triage beside the delivery (replaced atomically)."""
        final = self._status_path(delivery_id)
        tmp = final.with_suffix(".status.tmp")
        tmp.write_text(json.dumps(asdict(status)), encoding="utf-8")
        os.replace(tmp, final)

    def status(self, delivery_id: str) -> DeliveryStatus | None:
        """The delivery's failed attempts so far; None when it never failed (or is unreadable)."""
        try:
            raw: dict[str, Any] = json.loads(self._status_path(delivery_id).read_text(encoding="utf-8"))
            return DeliveryStatus(attempts=int(raw["attempts"]), error=str(raw["error"]),
                                  failed_at=float(raw["failed_at"]),
                                  retry_at=None if raw["retry_at"] is None else float(raw["retry_at"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def summary(self, now: float | None = None) -> InboxSummary:
        """Counts of waiting, retrying and dead deliveries, the oldest one's age, the failures."""
        now = time.time() if now is None else now
        waiting = retrying = dead = 0
        oldest = now
        failures: list[tuple[str, str, DeliveryStatus]] = []
        for arrived, event in self._stored():
            oldest = min(oldest, arrived)
            status = self.status(event.delivery_id)
            if status is None:
                waiting += 1
                continue
            dead, retrying = (dead + 1, retrying) if status.dead else (dead, retrying + 1)
            failures.append((event.delivery_id, event.key, status))
        failures.sort(key=lambda f: -f[2].failed_at)
        return InboxSummary(waiting, retrying, dead, max(0.0, now - oldest), failures)
