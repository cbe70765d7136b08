"""GitHub double, access side: the records of tokens, faults and requests, and who may call what."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Response

from tests.fakes.github_handlers import Reply
from tests.fakes.openapi_check import Operation

JWT_OPERATIONS = {"apps/get-authenticated", "apps/create-installation-access-token",
                  "apps/get-repo-installation", "apps/list-installations",
                  "apps/get-installation"}
DEFAULT_GRANT = {"contents": "write", "issues": "write", "pull_requests": "write",
                 "checks": "write", "metadata": "read"}


@dataclass
class TokenRec:
    """An installation token the double minted."""

    value: str
    repos: set[str]
    permissions: dict[str, str]
    expires_at: dt.datetime


@dataclass
class Fault:
    """A canned answer for the next matching requests (rate limits, outages)."""

    status: int
    body: Any
    headers: dict[str, str]
    times: int
    operation_id: str | None = None


@dataclass
class Logged:
    """One request the double served."""

    method: str
    path: str
    status: int
    operation_id: str
    body: Any = None
    auth: str = ""
    extra: dict[str, Any] = field(default_factory=dict[str, Any])


def needs(op: Operation) -> tuple[str, str] | None:
    """The installation permission an operation needs (GitHub's fine-grained categories)."""
    t, level = op.template, "read" if op.method == "GET" else "write"
    for marker, category in (("/check-runs", "checks"), ("/pulls", "pull_requests"),
                             ("/issues", "issues"), ("/labels", "issues"),
                             ("/contents/", "contents"), ("/git/", "contents"),
                             ("/branches/", "contents"), ("/statuses", "statuses"),
                             ("/status", "statuses"), ("/collaborators/", "metadata")):
        if marker in t:
            return category, "read" if category == "metadata" else level
    return ("metadata", "read") if t == "/repos/{owner}/{repo}" else None


def level_ok(granted: str | None, wanted: str) -> bool:
    order = {"read": 1, "write": 2, "admin": 3}
    return granted is not None and order.get(granted, 0) >= order[wanted]


def bad_credentials() -> Reply:
    return Reply(401, {"message": "Bad credentials",
                       "documentation_url": "https://docs.github.com/rest"})


def parse_query(query: str) -> list[tuple[str, str]]:
    return parse_qsl(query, keep_blank_values=True)


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(content=json.dumps(body), status_code=status, headers=headers,
                    media_type="application/json; charset=utf-8")


