"""Phase 8 commands (`diffusellm learn ...`): what the outcome memory holds, verdicts, training data."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from diffusellm.errors import InputError
from diffusellm.learn.dataset import ChatExample, examples_for, read_jsonl, write_jsonl
from diffusellm.learn.outcomes import Outcome, OutcomeStore
from diffusellm.learn.verdicts import sync_local
from diffusellm.models.settings import TransformersLLM
from diffusellm.pipeline.workspace import repository_root

if TYPE_CHECKING:
    from diffusellm.config import Settings

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


def sync(state_dir: Path, repo: Path, into: str | None) -> list[dict[str, Any]]:
    """Accept the runs of `repo` whose branches were merged; the newly accepted ones."""
    return [outcome_json(o) for o in sync_local(OutcomeStore.in_state(state_dir), repo, into)]


def set_verdict(state_dir: Path, key: str, verdict: Literal["accepted", "rejected"]) -> dict[str, Any]:
    """Accept or reject a run by hand."""
    return outcome_json(OutcomeStore.in_state(state_dir).set_verdict(key, verdict, "manual"))


def accepted_examples(state_dir: Path, repo: Path | None) -> list[ChatExample]:
    """Training examples from every accepted run of `repo`, or of every repository (a GitHub run's
    commits are read from the worker's checkout of its repository)."""
    root = str(repository_root(repo)) if repo is not None else None
    examples: list[ChatExample] = []
    for outcome in OutcomeStore.in_state(state_dir).outcomes(repo=root, verdict="accepted"):
        if Path(outcome.repo).is_dir():
            examples.extend(examples_for(outcome, Path(outcome.repo)))
    return examples


def export(state_dir: Path, repo: Path | None, out: Path) -> dict[str, Any]:
    """Write the accepted runs' examples (of `repo`, or of all repositories) as chat JSONL."""
    examples = accepted_examples(state_dir, repo)
    if not examples:
        raise InputError(
            f"no accepted run{f' of {repo}' if repo else ''} has generated code to learn from",
            hint="merge a diffusellm branch and run `diffusellm learn sync` (--server URL on a GitHub worker), "
            "or `diffusellm learn accept JOB`",
        )
    return {"examples": write_jsonl(examples, out), "path": str(out)}


def _adapter_dir(state_dir: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return state_dir / "learn" / ADAPTERS / stamp


def train(settings: Settings, repo: Path | None, data: Path | None, out: Path | None, *,
          progress: Callable[[int, float], None] | None = None) -> dict[str, Any]:
    """Train a LoRA adapter for the `llm` model on a JSONL file or on `repo`'s accepted runs;
    `progress(step, loss)` hears of every optimiser step."""
    from diffusellm.learn.lora import train_lora

    llm = settings.llm
    if not isinstance(llm, TransformersLLM):
        raise InputError(
            "LoRA training needs the model in this process (llm.type: transformers), not an endpoint",
            hint="train on the GPU worker with llm.type: transformers, then serve the merged model",
        )
    state = settings.state_path()
    examples = read_jsonl(data) if data is not None else accepted_examples(state, repo)
    if not examples:
        raise InputError(
            "nothing to train on: no accepted run has generated code" + (f" in {repo}" if repo else ""),
            hint="accept runs first (`diffusellm learn sync` / `learn accept`), or pass --data FILE.jsonl",
        )
    target = out or _adapter_dir(state)
    result = train_lora(llm, state, examples, target, settings.learn.lora, progress=progress)
    return {
        "adapter": str(result.adapter_dir),
        "examples": result.examples,
        "steps": result.steps,
        "first_loss": round(result.first_loss, 4),
        "last_loss": round(result.last_loss, 4),
        "seconds": round(result.seconds, 1),
        "warnings": list(result.warnings),
        "use_it": f"--set 'llm.adapters=[{result.adapter_dir}]' (or llm.adapters in config.yaml)",
    }


def train_core(state_dir: Path, min_examples: int) -> dict[str, Any]:
    """Fit the core predictor on every remembered run and save it where runs look for it."""
    from diffusellm.learn.core_predictor import PREDICTOR_FILE, train_core_predictor

    predictor = train_core_predictor(OutcomeStore.in_state(state_dir).outcomes(), min_examples=min_examples)
    if not any(predictor.examples.values()):
        raise InputError(
            "no remembered run generated code, so there is nothing to learn which core works better",
            hint="run free-text issues or specs with `instruction` first; runs are remembered automatically",
        )
    path = state_dir / "learn" / PREDICTOR_FILE
    predictor.save(path)
    return {
        "predictor": str(path),
        "runs": predictor.examples,
        "validated": predictor.successes,
        "deciding": [c for c, n in predictor.examples.items() if n >= predictor.min_examples],
    }
