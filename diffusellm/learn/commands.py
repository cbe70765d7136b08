"""Phase 8 commands (`diffusellm learn ...`): what the outcome memory holds, verdicts, training data."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

from diffusellm.errors import InputError
from diffusellm.learn.dataset import ChatExample, examples_for, write_jsonl
from diffusellm.learn.outcomes import Outcome, OutcomeStore
from diffusellm.learn.verdicts import sync_local
from diffusellm.worker.workspace import run_git

ADAPTERS = "adapters"


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    """An outcome for `--json` output, without the long fields."""
    data = asdict(outcome)
    data["operations"] = [f"{op.get('op')} {op.get('target')}" for op in outcome.operations]
    data.pop("description")
    return data


def adapters(state_dir: Path) -> list[dict[str, Any]]:
    """The adapters trained into the state folder, newest first, with their training record."""
    found: list[dict[str, Any]] = []
    for record in sorted((state_dir / "learn" / ADAPTERS).glob("*/training.json"), reverse=True):
        try:
            data: dict[str, Any] = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {"error": "unreadable training.json"}
        found.append({"adapter": str(record.parent), **data})
    return found


def status(state_dir: Path, limit: int = 20) -> dict[str, Any]:
    """Counts by verdict, the latest runs, and the trained adapters."""
    store = OutcomeStore.in_state(state_dir)
    latest = store.outcomes()[-limit:]
    return {
        "counts": store.counts(),
        "outcomes": [outcome_json(o) for o in reversed(latest)],
        "adapters": adapters(state_dir),
    }


def _repo_root(repo: Path) -> Path:
    return Path(run_git(["rev-parse", "--show-toplevel"], repo).stdout.decode().strip()).resolve()


def sync(state_dir: Path, repo: Path, into: str | None) -> list[dict[str, Any]]:
    """Accept the runs of `repo` whose branches were merged; the newly accepted ones."""
    return [outcome_json(o) for o in sync_local(OutcomeStore.in_state(state_dir), repo, into)]


def set_verdict(state_dir: Path, key: str, verdict: Literal["accepted", "rejected"]) -> dict[str, Any]:
    """Accept or reject a run by hand."""
    return outcome_json(OutcomeStore.in_state(state_dir).set_verdict(key, verdict, "manual"))


def accepted_examples(state_dir: Path, repo: Path) -> list[ChatExample]:
    """Training examples from every accepted run of `repo`."""
    root = _repo_root(repo)
    examples: list[ChatExample] = []
    for outcome in OutcomeStore.in_state(state_dir).outcomes(repo=str(root), verdict="accepted"):
        examples.extend(examples_for(outcome, root))
    return examples


def export(state_dir: Path, repo: Path, out: Path) -> dict[str, Any]:
    """Write the accepted runs' examples of `repo` as chat JSONL."""
    examples = accepted_examples(state_dir, repo)
    if not examples:
        raise InputError(
            f"no accepted run of {repo} has generated code to learn from",
            hint="merge a diffusellm branch and run `diffusellm learn sync`, or `diffusellm learn accept JOB`",
        )
    return {"examples": write_jsonl(examples, out), "path": str(out)}
