"""Phase 8, verdicts: a local run whose commit has been merged into the repository's branch is accepted;
a GitHub run takes the verdict the app recorded when its pull request was closed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from diffusellm.errors import InputError
from diffusellm.learn.outcomes import Outcome, OutcomeStore
from diffusellm.pipeline.workspace import repository_root, run_git


def _branch_name(repo: Path, into: str | None) -> str:
    if into:
        return into
    head = run_git(["symbolic-ref", "--quiet", "--short", "HEAD"], repo, check=False)
    return head.stdout.decode().strip() or "HEAD"


def merged(repo: Path, commit: str, into: str) -> bool:
    """Whether `commit` is reachable from `into` (it was merged, fast-forwarded or cherry-picked whole)."""
    known = run_git(["cat-file", "-e", f"{commit}^{{commit}}"], repo, check=False)
    if known.returncode != 0:
        return False
    return run_git(["merge-base", "--is-ancestor", commit, into], repo, check=False).returncode == 0


def sync_local(store: OutcomeStore, repo: Path, into: str | None = None) -> list[Outcome]:
    """Accept every pending run of `repo` whose commit is now part of `into` (default: the checked-out
    branch); return the runs newly accepted."""
    root = repository_root(repo)
    target = _branch_name(root, into)
    if run_git(["rev-parse", "--verify", "--quiet", f"{target}^{{commit}}"], root, check=False).returncode:
        raise InputError(
            f"{root} has no branch or commit {target!r} to look for merged runs in",
            hint="pass the branch the changes are merged into with --into, e.g. --into main",
        )
    accepted: list[Outcome] = []
    for outcome in store.outcomes(repo=str(root), verdict="pending"):
        if outcome.commit and merged(root, outcome.commit, target):
            accepted.append(store.set_verdict(outcome.job_id, "accepted", f"merged into {target}"))
    return accepted


VerdictSource = Callable[[Sequence[str]], dict[str, tuple[str, str]]]
"""Asks the app for (verdict, source) by app job id (`HttpSource.verdicts`)."""


def sync_forge(store: OutcomeStore, ask: VerdictSource) -> list[Outcome]:
    """Record the verdicts the app has for this worker's GitHub runs; return the runs decided now."""
    pending = store.pending_forge_jobs()
    if not pending:
        return []
    decided: list[Outcome] = []
    for forge_job, (verdict, source) in ask(sorted(pending)).items():
        if forge_job in pending and verdict in ("accepted", "rejected"):
            final: Literal["accepted", "rejected"] = "accepted" if verdict == "accepted" else "rejected"
            decided.append(store.set_verdict(pending[forge_job], final, source or f"app job {forge_job}"))
    return decided
