"""Comment commands: parse `/diffusellm <command>`, decide who may command the bot, word replies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from diffusellm.forge.base import Forge
from diffusellm.forge.freeze import clean_text
from diffusellm.jobs.model import Job

COMMANDS: dict[str, str] = {
    "plan": "post the plan for this issue and wait for `approve`",
    "approve": "run the plan posted earlier",
    "run": "plan and make the change now, then open a draft pull request",
    "retry": "run again after a failure (updates the same branch and pull request)",
    "revise": "on the bot's pull request: `revise <instructions>` adds commits following them",
    "cancel": "cancel the queued or running job of this issue",
    "status": "show the jobs of this issue",
    "help": "show this list",
}


@dataclass(frozen=True)
class ParsedCommand:
    """A command comment: the command word (lower case) and what follows it."""

    name: str
    argument: str

    @property
    def known(self) -> bool:
        """Whether `name` is one of COMMANDS."""
        return self.name in COMMANDS


def parse_command(text: str, prefix: str = "/diffusellm") -> ParsedCommand | None:
    """The command in a comment whose first non-blank line starts with `prefix`; None otherwise.

    `/diffusellm` alone means help. For `revise`, the argument is the rest of the comment.
    """
    lines = clean_text(text).strip().splitlines()
    if not lines:
        return None
    first = lines[0].strip()
    if not first.lower().startswith(prefix.lower()):
        return None
    rest = first[len(prefix):]
    if rest and not rest[0].isspace():
        return None  # `/diffusellmx` is someone else's command
    words = rest.split(maxsplit=1)
    if not words:
        return ParsedCommand(name="help", argument="")
    tail = "\n".join([words[1] if len(words) > 1 else "", *lines[1:]]).strip()
    return ParsedCommand(name=words[0].lower(), argument=tail)


def is_bot(login: str, user_type: str | None) -> bool:
    """GitHub marks App and bot accounts with type Bot and a `[bot]` login suffix."""
    return (user_type or "").lower() == "bot" or login.lower().endswith("[bot]")


def refusal(
    forge: Forge, login: str, user_type: str | None, allowed_bots: Sequence[str]
) -> str | None:
    """Why `login` may not command the bot here, or None when they may.

    Asked of the API every time (never the payload's author_association, which is not a
    permission: it misses team and organisation grants and says nothing about write access).
    """
    if is_bot(login, user_type) and login.lower() not in {b.lower() for b in allowed_bots}:
        return (f"@{login} is a bot account; bots may not trigger diffuseLLM unless they are "
                "listed in `github.allowed_bots`.")
    permission = forge.get_permission(login)
    if not permission.can_write:
        return (f"@{login} has `{permission.label}` permission on this repository; triggering "
                "diffuseLLM needs write, maintain or admin.")
    return None


def help_text(prefix: str, label: str, *, unknown: str | None = None) -> str:
    """The list of commands, optionally after a line saying the given one is unknown."""
    lines = [f"Unknown command `{prefix} {unknown}`.", ""] if unknown is not None else []
    lines += [f"Add the `{label}` label to an issue that says what to change, in plain words or as a "
              "```` ```yaml ```` spec block, or comment:", ""]
    lines += [f"- `{prefix} {name}`: {what}" for name, what in COMMANDS.items()]
    lines += ["", "Only people with write, maintain or admin permission can use these commands."]
    return "\n".join(lines)


def refusal_text(reason: str) -> str:
    """The reply to a refused label or command."""
    return f"🚫 Not started: {reason} Nothing was queued."


def status_text(jobs: Sequence[Job]) -> str:
    """A table of this issue's jobs, newest first."""
    if not jobs:
        return "No diffuseLLM job for this issue yet."
    rows = ["| job | command | state | attempts | updated |", "|---|---|---|---|---|"]
    for job in jobs:
        when = job.updated_at.strftime("%Y-%m-%d %H:%M UTC")
        rows.append(f"| `{job.id}` | {job.command.value} | {job.state.value} | "
                    f"{job.attempts}/{job.max_attempts} | {when} |")
    return "\n".join(rows)
