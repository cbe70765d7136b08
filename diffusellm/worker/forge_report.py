"""What the executor writes on the forge: the status checklist comment, PR body, check output."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from diffusellm.forge.base import CheckRunOutput, Comment, Forge, job_marker
from diffusellm.pipeline.deliver.summary import validation_table
from diffusellm.pipeline.deliver.text import describe_operation
from diffusellm.pipeline.spec import Spec
from diffusellm.pipeline.validate.report import ValidationReport

STEPS = (
    ("request", "Read the request"),
    ("spec", "Read the spec"),
    ("checkout", "Fetch the repository"),
    ("profiling style", "Profile the code style"),
    ("digesting repository", "Digest the repository"),
    ("applying operations", "Apply the operations"),
    ("validating in sandbox", "Validate in the sandbox"),
    ("push", "Push the branch"),
    ("pull request", "Open or update the pull request"),
)
_STEP_NAMES = dict(STEPS)


@dataclass
class StatusBoard:
    """The one status comment of a job's work key, edited in place as steps complete.

    A retry (a new job on the same issue) finds the comment by its marker and reuses it.
    """

    forge: Forge
    number: int
    key: str
    title: str
    done: list[str] = field(default_factory=list[str])
    current: str | None = None
    notes: dict[str, str] = field(default_factory=dict[str, str])
    outcome: str = ""
    comment: Comment | None = None

    def attach(self) -> None:
        """Find the bot's earlier comment with this marker (the newest, if several)."""
        marker = job_marker(self.key)
        ours = [c for c in self.forge.list_comments(self.number)
                if c.author.lower() == self.forge.bot_login.lower() and marker in c.body]
        self.comment = ours[-1] if ours else None

    def step(self, name: str, note: str = "") -> None:
        """Mark the running step done and start `name` (a STEPS key)."""
        if self.current is not None and self.current not in self.done:
            self.done.append(self.current)
        self.current = name
        if note:
            self.notes[name] = note
        self.publish()

    def note(self, name: str, note: str) -> None:
        """Attach a note to a step without publishing."""
        self.notes[name] = note

    def finish(self, outcome: str, *, completed: bool) -> None:
        """Close the checklist with `outcome`; the running step counts as done if `completed`."""
        if completed and self.current is not None and self.current not in self.done:
            self.done.append(self.current)
        self.outcome = outcome
        self.publish()

    def render(self) -> str:
        """The comment's Markdown."""
        lines = [f"### diffuseLLM: {self.title}", ""]
        for name, label in STEPS:
            note = f": {self.notes[name]}" if name in self.notes else ""
            if name in self.done:
                lines.append(f"- [x] {label}{note}")
            elif name == self.current and not self.outcome:
                lines.append(f"- [ ] ⏳ {label}{note}")
            elif name == self.current:
                lines.append(f"- [ ] ❌ {label}{note}")
            else:
                lines.append(f"- [ ] {label}{note}")
        if self.outcome:
            lines += ["", self.outcome]
        return "\n".join(lines) + f"\n\n{job_marker(self.key)}\n"

    def publish(self) -> None:
        """Create the comment the first time, edit it afterwards."""
        body = self.render()
        if self.comment is None:
            self.comment = self.forge.post_comment(self.number, body)
        elif self.comment.body != body:
            self.comment = self.forge.edit_comment(self.comment.id, body)


def plan_section(spec: Spec) -> str:
    """The operations as a list and as the YAML that produced them."""
    items = "\n".join(f"- {describe_operation(op)}" for op in spec.operations)
    data = [op.model_dump(mode="json", exclude_none=True) for op in spec.operations]
    # `<` escaped (still valid JSON) so a default value cannot plant a marker or an HTML comment.
    text = json.dumps(data, indent=2).replace("<", "\\u003c")
    return f"### Plan\n\n{items}\n\n<details><summary>operations</summary>\n\n```json\n" \
           f"{text}\n```\n\n</details>"


def pr_body(summary: str, spec: Spec, *, issue_number: int | None, key: str) -> str:
    """The run's summary.md, the plan, `Closes #N` and the hidden marker."""
    parts = [summary.strip(), plan_section(spec)]
    if issue_number is not None:
        parts.append(f"Closes #{issue_number}")
    parts.append(job_marker(key))
    return "\n\n".join(parts) + "\n"


def check_output(report: ValidationReport) -> CheckRunOutput:
    """The check run's title and validation table."""
    if report.failed:
        title = "New failures against the base commit"
    elif report.missing:
        title = "Not validated: required checks did not run"
    else:
        title = "No new failures" + (" (some checks did not run)" if report.unchecked else "")
    return CheckRunOutput(title=title, summary=validation_table(report))


def failure_text(*, attempted: str, reason: str, hint: str, command: str) -> str:
    """What was attempted, why it stopped, how to retry."""
    parts = [f"**Stopped.** I tried to {attempted}.", "", f"**Why it stopped:** {reason}"]
    if hint:
        parts += ["", f"**What to do:** {hint}"]
    parts += ["", f"When that is fixed, comment `{command} retry` to try again; the branch, "
                  "pull request and this comment are reused."]
    return "\n".join(parts)


def spec_request_text(title: str, command: str, *, free_text: bool = False) -> str:
    """The reply to a request without a YAML spec block: a concrete block to paste."""
    why = "it says nothing to act on" if free_text else "this worker has no language model to read free text"
    return "\n".join([
        f"**Waiting for a spec.** This has no ```` ```yaml ```` block, and {why}. "
        "Add a block like this (edit it to your names), then "
        f"comment `{command} run`:",
        "",
        "```yaml",
        f"title: {json.dumps(title or 'Rename a function')}",
        "operations:",
        "  - op: rename_symbol",
        "    target: package.module.old_name",
        "    new_name: new_name",
        "```",
        "",
        "Operations: `rename_symbol`, `add_parameter`, `remove_parameter`, `move_symbol` "
        "(see docs/SPEC.md).",
    ])


def changed_text_reply(command: str) -> str:
    """The reply when the issue was edited after the job was triggered."""
    return ("**Not started: the issue changed** after this job was triggered (its title, body or "
            "a maintainer's comment was edited). I only act on text a maintainer approved. "
            f"Re-apply the label or comment `{command} run` to run on the current text.")


def question_text(question: str, command: str) -> str:
    """The reply when the issue does not say enough: the model's concrete question."""
    return (
        f"**I need to know more before changing anything.** {question}\n\n"
        f"Edit the issue (or add a ```` ```yaml ```` spec block, see docs/SPEC.md), then comment `{command} run`."
    )
