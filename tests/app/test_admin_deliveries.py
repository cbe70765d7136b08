"""The admin page of failed webhook deliveries: what failed and why, Retry and Discard, the job list's notice."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from diffusellm.app.inbox import DeliveryStatus, SpoolInbox, state_inbox
from diffusellm.app.router import WebhookEvent
from diffusellm.config import Settings, load_settings
from tests.app.admin_support import admin_client, login
from tests.conftest import make_repo
from tests.jobs.support import sqlite_store


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(None, [f"state_dir={tmp_path / 'state'}"])


@pytest.fixture
def inbox(settings: Settings) -> SpoolInbox:
    return state_inbox(settings.state_path())


@pytest.fixture
def client(settings: Settings, tmp_path: Path) -> TestClient:
    repo = make_repo(tmp_path / "proj", {"pkg/__init__.py": ""})
    return admin_client(sqlite_store(tmp_path), settings, repo)


def _stored(inbox: SpoolInbox, delivery_id: str, status: DeliveryStatus | None) -> None:
    inbox.put(WebhookEvent("issues", delivery_id, {"action": "labeled"}))
    if status is not None:
        inbox.record_failure(delivery_id, status)


def test_failed_deliveries_are_listed_with_their_reason_and_the_job_list_points_there(
        client: TestClient, inbox: SpoolInbox) -> None:
    _stored(inbox, "d-new", None)
    _stored(inbox, "d-dead", DeliveryStatus(8, "gave up after 8 attempts: GitHub unreachable: <timeout>",
                                            failed_at=2000.0, retry_at=None))
    _stored(inbox, "d-again", DeliveryStatus(2, "GitHub answered 502", failed_at=1000.0, retry_at=4e9))
    assert client.get("/admin/deliveries").status_code == 303, "signed out: off to log in"
    login(client)
    page = client.get("/admin/deliveries").text
    assert "Waiting: <strong>1</strong>" in page and "Retrying: <strong>1</strong>" in page
    assert 'Dead: <strong class="bad">1</strong>' in page
    assert page.index('id="delivery-d-dead"') < page.index('id="delivery-d-again"'), "newest failure first"
    assert "GitHub unreachable: &lt;timeout&gt;" in page, "the reason is shown, escaped"
    assert "kept until you retry or discard it" in page and "tried again in" in page
    assert 'id="delivery-d-new"' not in page, "a delivery not tried yet is only counted"
    jobs = client.get("/admin/jobs").text
    assert 'id="inbox-notice"' in jobs and "1 dead and\n1 retrying" in jobs


def test_retry_clears_the_failures_and_discard_deletes_the_delivery(client: TestClient, inbox: SpoolInbox) -> None:
    dead = DeliveryStatus(8, "the App is not installed", failed_at=2000.0, retry_at=None)
    _stored(inbox, "d-1", dead)
    _stored(inbox, "d-2", dead)
    assert client.post("/admin/deliveries/d-1/retry").status_code == 303, "signed out: off to log in"
    csrf = login(client)
    assert client.post("/admin/deliveries/d-1/retry", data={"csrf_token": "x." + "0" * 64}).status_code == 403
    assert inbox.status("d-1") == dead, "a forged post changes nothing"

    done = client.post("/admin/deliveries/d-1/retry", data={"csrf_token": csrf})
    assert done.status_code == 303 and done.headers["location"] == "/admin/deliveries"
    assert inbox.status("d-1") is None and [e.delivery_id for e in inbox.pending()] == ["d-1", "d-2"]
    assert client.post("/admin/deliveries/d-2/discard", data={"csrf_token": csrf}).status_code == 303
    assert [e.delivery_id for e in inbox.pending()] == ["d-1"]
    assert inbox.status("d-2") is None

    gone = client.post("/admin/deliveries/d-2/retry", data={"csrf_token": csrf})
    assert gone.status_code == 404 and "may have been triaged or discarded" in gone.text
    assert client.post("/admin/deliveries/..%2Fetc/discard", data={"csrf_token": csrf}).status_code == 404
    assert 'id="inbox-notice"' not in client.get("/admin/jobs").text, "nothing failing: no notice"
