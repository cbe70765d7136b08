"""Triage after the 202: labels, commands and reviews become jobs after a permission check."""

from __future__ import annotations

import functools
import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from diffusellm.app.commands import (
    ParsedCommand,
    help_text,
    parse_command,
    refusal,
    refusal_text,
    status_text,
)
from diffusellm.app.router import EventRouter, WebhookEvent
from diffusellm.errors import ConfigError
from diffusellm.forge.base import Forge, ForgeError, marker_key
from diffusellm.forge.freeze import clean_text, freeze, trusted_comments
from diffusellm.forge.github_settings import GitHubSettings
from diffusellm.jobs.model import (
    TERMINAL_STATES,
    FrozenRequest,
    Job,
    JobCommand,
    JobState,
    JobStore,
    NewJob,
)
from diffusellm.repo_config import REPO_CONFIG_PATH, RepoConfig, parse_repo_config

log = structlog.get_logger(__name__)
ForgeFactory = Callable[[str, "int | None"], Forge]


class RepoConfigs:
    """Each repository's .github/diffusellm.yml as triage last read it, kept `ttl_s` seconds.

    A label that is not the trigger then costs no API call (and no wait while GitHub is down);
    a stale entry is used when reading again fails. The executor always reads the file afresh.
    """

    def __init__(self, ttl_s: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl, self._clock = ttl_s, clock
        self._seen: dict[str, tuple[float, RepoConfig]] = {}
        self._lock = threading.Lock()

    def get(self, repo: str, read: Callable[[], RepoConfig]) -> RepoConfig:
        """The cached config of `repo`, or `read()` when it is older than the TTL."""
        with self._lock:
            cached = self._seen.get(repo)
        if cached is not None and self._clock() - cached[0] < self._ttl:
            return cached[1]
        try:
            config = read()
        except ForgeError:
            if cached is None:
                raise
            return cached[1]
        with self._lock:
            self._seen[repo] = (self._clock(), config)
        return config


@dataclass(frozen=True)
class TriageContext:
    """What the handlers need: the store, the bot's settings and a forge per repository."""

    store: JobStore
    settings: GitHubSettings
    forges: ForgeFactory
    configs: RepoConfigs = field(default_factory=RepoConfigs)


@dataclass(frozen=True)
class Target:
    """The issue or pull request an event is about, and who sent it."""

    repo: str
    installation_id: int | None
    number: int
    is_pr: bool
    title: str
    body: str
    author: str
    sender: str
    sender_type: str | None


def _obj(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one (payload fields may be null)."""
    return value if isinstance(value, dict) else {}  # pyright: ignore[reportUnknownVariableType]


def _target(payload: dict[str, Any], item_key: str) -> Target:
    item = _obj(payload[item_key])
    sender = _obj(payload.get("sender"))
    installation = _obj(payload.get("installation"))
    inst_id = installation.get("id")
    return Target(
        repo=str(payload["repository"]["full_name"]),
        installation_id=inst_id if isinstance(inst_id, int) else None,
        number=int(item["number"]),
        is_pr=item_key == "pull_request" or bool(item.get("pull_request")),
        title=str(item.get("title") or ""), body=str(item.get("body") or ""),
        author=str(_obj(item.get("user")).get("login", "")),
        sender=str(sender.get("login", "")), sender_type=str(sender.get("type") or "") or None,
    )


def idempotency_key(request: FrozenRequest, command: JobCommand, trigger: str) -> str:
    """sha256 of repo, issue/PR, command, frozen text and the trigger (label or comment id)."""
    parts = [request.repo_full_name, request.issue_number, request.pr_number, command.value,
             request.text_sha256, trigger]
    return hashlib.sha256(json.dumps(parts).encode("utf-8")).hexdigest()


def _repo_config(forge: Forge) -> RepoConfig:
    try:
        return parse_repo_config(forge.get_default_branch_file(REPO_CONFIG_PATH))
    except ConfigError:
        return RepoConfig()  # the job's executor explains the error in a comment


def _freeze_issue(forge: Forge, ctx: TriageContext, t: Target) -> FrozenRequest:
    cache: dict[str, bool] = {}

    def trusted(login: str) -> bool:
        if login not in cache:
            cache[login] = forge.get_permission(login).can_write
        return cache[login]

    comments = trusted_comments(forge.list_comments(t.number), is_trusted=trusted,
                                bot_login=forge.bot_login, command=ctx.settings.command)
    return freeze(repo_full_name=t.repo, installation_id=t.installation_id, issue_number=t.number,
                  title=t.title, body=t.body, comments=comments, sender=t.sender)


def _enqueue(ctx: TriageContext, forge: Forge, t: Target, command: JobCommand,
             request: FrozenRequest, trigger: str, delivery: str,
             config: RepoConfig | None = None) -> Job:
    config = config or _repo_config(forge)
    key = idempotency_key(request, command, trigger)
    job, created = ctx.store.enqueue(NewJob(command=command, request=request, idempotency_key=key,
                                            delivery_id=delivery, max_attempts=config.max_attempts))
    log.info("triage.enqueued", job=job.id, created=created, repo=t.repo, number=t.number)
    if not created:
        forge.post_comment(t.number, (
            f"This request already has job `{job.id}` ({job.state.value}). To run it again, "
            f"comment `{ctx.settings.command} retry`."))
    return job


def _jobs_of(ctx: TriageContext, repo: str, number: int) -> list[Job]:
    jobs = ctx.store.list_jobs(limit=100, repo_full_name=repo)
    return [j for j in jobs if number in (j.request.issue_number, j.request.pr_number)]


def _gate(ctx: TriageContext, forge: Forge, t: Target) -> bool:
    reason = refusal(forge, t.sender, t.sender_type, ctx.settings.allowed_bots)
    if reason is None:
        return True
    log.info("triage.refused", repo=t.repo, number=t.number, sender=t.sender)
    forge.post_comment(t.number, refusal_text(reason))
    return False


def on_labeled(ctx: TriageContext, event: WebhookEvent) -> None:
    """The trigger label on an issue queues a RUN job; any other label costs no API call once the
    repository's config is known (see RepoConfigs)."""
    label = str(_obj(event.payload.get("label")).get("name", ""))
    t = _target(event.payload, "issue")
    if t.is_pr or not label:
        return
    forge: Forge | None = None

    def read() -> RepoConfig:
        nonlocal forge
        forge = forge or ctx.forges(t.repo, t.installation_id)
        return _repo_config(forge)

    config = ctx.configs.get(t.repo, read)
    wanted = config.trigger_label or ctx.settings.trigger_label
    if label.lower() != wanted.lower():
        return
    forge = forge or ctx.forges(t.repo, t.installation_id)
    if not _gate(ctx, forge, t):
        return
    request = _freeze_issue(forge, ctx, t)
    _enqueue(ctx, forge, t, JobCommand.RUN, request, "label", event.delivery_id, config)


def _bots_pr(forge: Forge, t: Target) -> bool:
    return t.author.lower() == forge.bot_login.lower() and marker_key(t.body) is not None


def _linked_issue(t: Target) -> int | None:
    key = marker_key(t.body) or ""
    return int(key.removeprefix("issue-")) if key.startswith("issue-") else None


def on_comment(ctx: TriageContext, event: WebhookEvent) -> None:
    """`/diffusellm <command>` in a comment on an issue or on one of the bot's pull requests."""
    comment: dict[str, Any] = event.payload["comment"]
    command = parse_command(str(comment.get("body") or ""), ctx.settings.command)
    t = _target(event.payload, "issue")
    if command is None:
        return
    forge = ctx.forges(t.repo, t.installation_id)
    if t.sender.lower() == forge.bot_login.lower() or not _gate(ctx, forge, t):
        return
    if t.is_pr and not _bots_pr(forge, t):
        forge.post_comment(t.number, "I only act on issues and on pull requests I opened.")
        return
    forge.add_comment_reaction(int(comment["id"]), "eyes")
    _run_command(ctx, forge, t, command, f"comment-{comment['id']}", event.delivery_id)


def _run_command(ctx: TriageContext, forge: Forge, t: Target, command: ParsedCommand,
                 trigger: str, delivery: str) -> None:
    name, prefix = command.name, ctx.settings.command
    if name in ("help", "status", "cancel") or not command.known:
        forge.post_comment(t.number, _info_reply(ctx, t, command))
    elif name == "approve":
        _approve(ctx, forge, t, trigger, delivery)
    elif name == "revise":
        _revise(ctx, forge, t, command.argument, trigger, delivery)
    else:
        job_command = JobCommand.PLAN if name == "plan" else JobCommand.RUN
        issue_target = _issue_for(forge, t)
        if issue_target is None:
            forge.post_comment(t.number, f"`{prefix} {name}` needs the issue this PR came from.")
            return
        request = _freeze_issue(forge, ctx, issue_target)
        _enqueue(ctx, forge, issue_target, job_command, request, trigger, delivery)


def _issue_for(forge: Forge, t: Target) -> Target | None:
    """For a command on the bot's PR, the issue named in its marker, as it reads now."""
    if not t.is_pr:
        return t
    number = _linked_issue(t)
    if number is None:
        return None
    issue = forge.get_issue(number)
    return Target(repo=t.repo, installation_id=t.installation_id, number=number, is_pr=False,
                  title=issue.title, body=issue.body, author=issue.author, sender=t.sender,
                  sender_type=t.sender_type)


def _info_reply(ctx: TriageContext, t: Target, command: ParsedCommand) -> str:
    s = ctx.settings
    if not command.known:
        return help_text(s.command, s.trigger_label, unknown=command.name)
    if command.name == "help":
        return help_text(s.command, s.trigger_label)
    jobs = _jobs_of(ctx, t.repo, t.number)
    if command.name == "status":
        return status_text(jobs)
    active = [j for j in jobs if j.state not in TERMINAL_STATES]
    cancelled = [j.id for j in active if ctx.store.cancel(j.id)]
    if not cancelled:
        return "Nothing to cancel: no queued or running job for this issue."
    return "Cancelled " + ", ".join(f"`{i}`" for i in cancelled) + "."


def _approve(ctx: TriageContext, forge: Forge, t: Target, trigger: str, delivery: str) -> None:
    jobs = _jobs_of(ctx, t.repo, t.number)
    waiting = [j for j in jobs if j.state == JobState.WAITING_APPROVAL]
    if waiting and ctx.store.approve(waiting[0].id):
        forge.post_comment(t.number, f"Approved: job `{waiting[0].id}` is queued again.")
        return
    plans = [j for j in jobs if j.command == JobCommand.PLAN and j.state == JobState.SUCCEEDED]
    if not plans:
        forge.post_comment(t.number, f"No plan to approve; comment `{ctx.settings.command} plan` "
                                     "first.")
        return
    # The plan's frozen text is what was approved; the executor refuses if the issue changed since.
    _enqueue(ctx, forge, t, JobCommand.RUN, plans[0].request, f"approve-{plans[0].id}", delivery)


def _revise(ctx: TriageContext, forge: Forge, t: Target, instructions: str, trigger: str,
            delivery: str) -> None:
    if not t.is_pr:
        forge.post_comment(t.number, "`revise` works on the pull request diffuseLLM opened; "
                                     "comment there.")
        return
    if not clean_text(instructions).strip():
        forge.post_comment(t.number, f"Say what to change: `{ctx.settings.command} revise "
                                     "<instructions>`.")
        return
    request = freeze(repo_full_name=t.repo, installation_id=t.installation_id,
                     issue_number=_linked_issue(t), pr_number=t.number, title=t.title,
                     body=instructions, instructions=instructions, sender=t.sender)
    _enqueue(ctx, forge, t, JobCommand.REVISE, request, trigger, delivery)


def _mentions_bot(text: str, bot_login: str) -> bool:
    slug = bot_login.lower().removesuffix("[bot]")
    lowered = clean_text(text).lower()
    return f"@{slug}" in lowered


def on_review(ctx: TriageContext, event: WebhookEvent) -> None:
    """A changes-requested review on the bot's PR that mentions the bot becomes a REVISE job."""
    review: dict[str, Any] = event.payload["review"]
    if str(review.get("state", "")).lower() != "changes_requested":
        return
    body = str(review.get("body") or "")
    if "@" not in body:  # it cannot mention the bot: no API call
        return
    t = _target(event.payload, "pull_request")
    forge = ctx.forges(t.repo, t.installation_id)
    if not _mentions_bot(body, forge.bot_login) or not _bots_pr(forge, t):
        return
    if _gate(ctx, forge, t):
        _revise(ctx, forge, t, body, f"review-{review['id']}", event.delivery_id)


def on_pr_closed(ctx: TriageContext, event: WebhookEvent) -> None:
    """The bot's pull request was merged (accepted: training data) or closed unmerged (rejected)."""
    pr = _obj(event.payload.get("pull_request"))
    repo = str(_obj(event.payload.get("repository")).get("full_name", ""))
    number = pr.get("number")
    verdict = "accepted" if pr.get("merged") else "rejected"
    source = f"pull request #{number} {'merged' if verdict == 'accepted' else 'closed without merging'}"
    jobs = ctx.store.list_jobs(limit=100, repo_full_name=repo)
    for job in (j for j in jobs if isinstance(number, int) and j.result.get("pr_number") == number):
        if ctx.store.record_verdict(job.id, verdict, source):
            log.info("triage.verdict", job=job.id, repo=repo, pr=number, verdict=verdict)


def on_lifecycle(event: WebhookEvent) -> None:
    """ping, installation and installation_repositories: nothing to queue; logged for operators."""
    payload = event.payload
    added: list[Any] = payload.get("repositories_added") or payload.get("repositories") or []
    log.info("webhook.lifecycle", webhook=event.key,
             installation=_obj(payload.get("installation")).get("id"),
             repositories=[_obj(r).get("full_name") for r in added])


def register(events: EventRouter, ctx: TriageContext) -> EventRouter:
    """Attach every handler to `events`; returns it."""
    events.add("issues.labeled", functools.partial(on_labeled, ctx))
    events.add("issue_comment.created", functools.partial(on_comment, ctx))
    events.add("pull_request_review.submitted", functools.partial(on_review, ctx))
    events.add("pull_request.closed", functools.partial(on_pr_closed, ctx))
    for key in ("installation", "installation_repositories", "ping"):
        events.add(key, on_lifecycle)
    return events
