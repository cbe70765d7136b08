"""Webhook deliveries for tests: GitHub's examples, aimed at the double, signed as GitHub signs."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from pathlib import Path
from typing import Any

from tests.fakes.github_double import GitHubDouble
from tests.fakes.github_resources import CommentRec, IssueRec, RepoRec, iso

# GitHub's example payloads, copied into the repository (tests/data/github/README.md).
EXAMPLES = Path(__file__).resolve().parents[1] / "data/github/webhook-examples/api.github.com"


def example(event: str, name: str, base_url: str) -> dict[str, Any]:
    """One example payload with https://api.github.com (and github.com) rewritten to the double."""
    text = (EXAMPLES / event / name).read_text(encoding="utf-8")
    text = text.replace("https://api.github.com", base_url).replace("https://github.com", base_url)
    return json.loads(text)


def _common(double: GitHubDouble, payload: dict[str, Any], repo: RepoRec, sender: str) -> dict[str, Any]:
    payload["repository"].update(
        id=repo.id, name=repo.name, full_name=repo.full_name, private=True, default_branch=repo.default_branch
    )
    payload["repository"]["owner"]["login"] = repo.owner
    payload["sender"] = double.shapes.user(double.users[sender])
    payload["installation"] = {"id": double.installation_id, "node_id": "MDIzOkluc3RhbGxhdGlvbjc3"}
    return payload


def _issue(double: GitHubDouble, payload_issue: dict[str, Any], repo: RepoRec, issue: IssueRec) -> None:
    full = double.issue_json(repo, issue)
    for key in ("number", "title", "body", "user", "labels", "url", "html_url", "comments_url", "state", "id"):
        payload_issue[key] = full[key]
    payload_issue.pop("pull_request", None)
    if "pull_request" in full:
        payload_issue["pull_request"] = full["pull_request"]


def labeled(double: GitHubDouble, repo: RepoRec, issue: IssueRec, label: str, sender: str) -> dict[str, Any]:
    """issues.labeled, from issues/labeled.payload.json."""
    payload = _common(double, example("issues", "labeled.payload.json", double.url), repo, sender)
    _issue(double, payload["issue"], repo, issue)
    payload["label"]["name"] = label
    if label not in issue.labels:
        issue.labels.append(label)
    return payload


def comment_created(double: GitHubDouble, repo: RepoRec, issue: IssueRec, comment: CommentRec) -> dict[str, Any]:
    """issue_comment.created, from issue_comment/created.payload.json."""
    payload = _common(double, example("issue_comment", "created.payload.json", double.url), repo, comment.user)
    _issue(double, payload["issue"], repo, issue)
    payload["comment"].update(
        id=comment.id,
        body=comment.body,
        user=double.shapes.user(double.users[comment.user]),
        created_at=iso(comment.created_at),
        updated_at=iso(comment.updated_at),
    )
    return payload


def review_submitted(
    double: GitHubDouble, repo: RepoRec, pull: IssueRec, *, state: str, body: str, reviewer: str
) -> dict[str, Any]:
    """pull_request_review.submitted, from pull_request_review/submitted.payload.json."""
    payload = _common(double, example("pull_request_review", "submitted.payload.json", double.url), repo, reviewer)
    full = double.pull_json(repo, pull)
    for key in ("number", "title", "body", "user", "url", "html_url", "state", "id", "head", "base"):
        payload["pull_request"][key] = full[key]
    payload["review"].update(
        id=double.next_id(), state=state, body=body, user=double.shapes.user(double.users[reviewer])
    )
    return payload


def pull_request_closed(
    double: GitHubDouble, repo: RepoRec, pull: IssueRec, *, merged: bool, sender: str
) -> dict[str, Any]:
    """pull_request.closed, from pull_request/closed.payload.json (merged or not)."""
    payload = _common(double, example("pull_request", "closed.payload.json", double.url), repo, sender)
    full = double.pull_json(repo, pull)
    for key in ("number", "title", "body", "user", "url", "html_url", "id", "head", "base"):
        payload["pull_request"][key] = full[key]
    payload["pull_request"].update(state="closed", merged=merged)
    return payload


def sign(secret: str, body: bytes) -> dict[str, str]:
    """Both signature headers, as GitHub sends them."""
    return {
        "X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
        "X-Hub-Signature": "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest(),
    }


def delivery(
    event: str, payload: dict[str, Any], secret: str, *, delivery_id: str | None = None
) -> tuple[bytes, dict[str, str]]:
    """(body, headers) of one signed delivery."""
    body = json.dumps(payload).encode("utf-8")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/test",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "1",
        **sign(secret, body),
    }
    return body, headers
