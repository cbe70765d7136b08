"""Request limits in isolation: JSON depth, the body deadline, ended sessions, the same-origin check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from diffusellm.app.admin.auth import AdminAuth, EndedSessions
from diffusellm.app.admin.pages import cross_site
from diffusellm.app.limits import MAX_JSON_DEPTH, json_too_deep


def _nested(depth: int) -> bytes:
    """Objects and arrays in turn, `depth` deep, written out by hand (json.dumps itself recurses)."""
    opens = "".join('{"k": ' if level % 2 else "[" for level in range(depth))
    closes = "".join("}" if level % 2 else "]" for level in reversed(range(depth)))
    text = f"{opens}1{closes}"
    if depth <= 500:
        json.loads(text)  # well-formed
    return text.encode()


@pytest.mark.parametrize(("depth", "too_deep"), [(0, False), (1, False), (MAX_JSON_DEPTH, False),
                                                 (MAX_JSON_DEPTH + 1, True), (5000, True)])
def test_json_depth_is_measured_by_nesting(depth: int, too_deep: bool) -> None:
    assert json_too_deep(_nested(depth)) is too_deep


def test_brackets_inside_strings_do_not_count() -> None:
    body = json.dumps({"text": "[" * 500 + '\\"{' * 300, "list": [1, 2, "]]]"]}).encode()
    assert not json_too_deep(body)
    assert json_too_deep(b'{"a": "\\\\", "b": ' + b"[" * 70 + b"]" * 70 + b"}")


def test_many_shallow_containers_pass() -> None:
    assert not json_too_deep(json.dumps([[{"a": [1]}] for _ in range(20_000)]).encode())


def test_an_ended_session_stays_ended_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "admin" / "ended-sessions"
    auth = AdminAuth("t" * 32, ended=EndedSessions(path))
    kept, ended = auth.new_session(), auth.new_session()
    auth.end_session(ended)
    assert auth.valid_session(kept) and not auth.valid_session(ended)
    assert auth.session_csrf(ended) is None
    restarted = AdminAuth("t" * 32, ended=EndedSessions(path))
    assert restarted.valid_session(kept) and not restarted.valid_session(ended)


def test_an_ended_session_is_forgotten_once_it_would_have_expired(tmp_path: Path) -> None:
    now = [1000.0]
    ended = EndedSessions(tmp_path / "ended", clock=lambda: now[0])
    auth = AdminAuth("t" * 32, session_seconds=10, clock=lambda: now[0], ended=ended)
    old = auth.new_session()
    auth.end_session(old)
    now[0] += 20
    auth.end_session(auth.new_session())
    assert len((tmp_path / "ended").read_text().splitlines()) == 1


def _app() -> FastAPI:
    app = FastAPI()

    @app.post("/act")
    async def act(request: Request) -> dict[str, str]:  # pyright: ignore[reportUnusedFunction]
        return {"refused": cross_site(request)}

    return app


@pytest.mark.parametrize(("headers", "refused"), [
    ({}, False),
    ({"Sec-Fetch-Site": "same-origin", "Origin": "http://testserver"}, False),
    ({"Sec-Fetch-Site": "none"}, False),
    ({"Sec-Fetch-Site": "same-site"}, True),
    ({"Sec-Fetch-Site": "cross-site"}, True),
    ({"Origin": "https://evil.example"}, True),
    ({"Origin": "null"}, True),
    ({"Origin": "https://testserver"}, False),
])
def test_state_changing_posts_from_other_sites_are_recognised(headers: dict[str, str], refused: bool) -> None:
    with TestClient(_app()) as client:
        assert bool(client.post("/act", headers=headers).json()["refused"]) is refused
