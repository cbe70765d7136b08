"""Admin pages, words: where a job's spec came from, and what to do about a job that failed."""

from __future__ import annotations

import yaml

from diffusellm.jobs.model import EDITED_SPEC_KEY, SPEC_AUTHOR_KEY, SPEC_BY_MODEL, Job, JobState
from diffusellm.pipeline.spec import YAML_BLOCK

MAX_EDITOR_CHARS = 60


def _request_text(job: Job) -> str:
    return (job.request.instructions or job.request.body).replace("\r\n", "\n")


def spec_origin(job: Job) -> tuple[str, str]:
    """The spec YAML to show and edit, and where it came from, in words.

    In order: the approved spec (read by the model during `plan`, or edited by a person), the spec the
    run reported, the ```yaml block of the issue.
    """
    result = job.result
    approved = result.get(EDITED_SPEC_KEY)
    if isinstance(approved, str) and approved.strip():
        author = result.get(SPEC_AUTHOR_KEY)
        if author == SPEC_BY_MODEL:
            return approved, "read by the model from the issue's text"
        if isinstance(author, str) and author.strip():
            return approved, f"edited by {author}"
        return approved, "edited before execution"  # jobs approved before authors were recorded
    block = YAML_BLOCK.search(_request_text(job))
    reported = result.get("report")
    spec = reported.get("spec") if isinstance(reported, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    if isinstance(spec, dict) and spec:
        text = yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)
        return text, "from the issue's yaml block" if block else "read by the model from the issue's text"
    if block:
        return block.group(1) + "\n", "from the issue's yaml block"
    return "", ""


def editor_name(raw: str) -> str:
    """The name a person gave when editing a spec, on one line and short; `the admin` when none."""
    name = " ".join(raw.split())[:MAX_EDITOR_CHARS]
    return name or "the admin"


def failure_hint(job: Job, stored_hint: str) -> str:
    """What to do about a failed or dead job: the hint the worker stored, else one read from its end."""
    if job.state not in (JobState.FAILED, JobState.DEAD):
        return stored_hint
    retry = "then Retry: the job finds its own branch and pull request again and never duplicates them."
    if stored_hint:
        return f"{stored_hint.rstrip('.')}; {retry}"
    error = job.error or ""
    if "lease expired" in error:
        return ("The worker running it stopped heartbeating (it died, was restarted or lost the network). "
                f"Check that a worker is running and reaches the app, {retry}")
    if job.state is JobState.DEAD:
        return (f"Every attempt ({job.attempts} of {job.max_attempts}) hit a passing failure (network, "
                f"GitHub unavailable, rate limit). When the cause is gone, {retry}")
    return f"Read the error above and fix its cause (the issue's text or spec, the repository), {retry}"
