"""Phase 8, core selection: which model core fills a job's code (the diffusion model or the LLM), learned
from remembered runs by a small logistic regression per core that predicts validation success from the
plan's shape. Until a core has enough runs of its own, the predictor tries that core (exploration)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from diffusellm.errors import InputError
from diffusellm.learn.outcomes import Outcome

CORES = ("diffusion", "llm")
FEATURES = ("bias", "edit_function", "add_function", "add_test", "log_instruction_chars", "log_code_lines")
GENERATED = ("edit_function", "add_function", "add_test")
PREDICTOR_FILE = "core_predictor.json"


def plan_features(operations: Sequence[Mapping[str, Any]]) -> list[float]:
    """The features of a plan (its operations as JSON data): how many of each generated kind, how long
    the instructions are and how much code is given (log scale), plus a bias term."""
    generated = [op for op in operations if op.get("op") in GENERATED]
    chars = sum(len(str(op.get("instruction") or "")) for op in generated)
    code = sum(str(op.get(k) or "").count("\n") for op in generated for k in ("source", "body"))
    counts = [float(sum(1 for op in generated if op.get("op") == kind)) for kind in GENERATED]
    return [1.0, *counts, math.log1p(chars), math.log1p(code)]


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def _dot(w: Sequence[float], x: Sequence[float]) -> float:
    return sum(a * b for a, b in zip(w, x, strict=True))


def fit_logistic(rows: Sequence[tuple[list[float], bool]], *, l2: float = 0.1, steps: int = 400) -> list[float]:
    """Weights of an L2-regularised logistic regression by gradient descent (the bias is not penalised)."""
    width = len(FEATURES)
    weights = [0.0] * width
    rate = 0.5
    for _ in range(steps):
        grad = [0.0] * width
        for x, label in rows:
            error = _sigmoid(_dot(weights, x)) - (1.0 if label else 0.0)
            for i in range(width):
                grad[i] += error * x[i] / len(rows)
        for i in range(width):
            penalty = l2 * weights[i] if i else 0.0
            weights[i] -= rate * (grad[i] + penalty)
    return weights


@dataclass(frozen=True)
class CorePredictor:
    """Per-core success models and how many runs each was fitted on."""

    weights: dict[str, list[float]]
    examples: dict[str, int]
    successes: dict[str, int]
    min_examples: int
    trained_at: str

    def success_probability(self, core: str, operations: Sequence[Mapping[str, Any]]) -> float | None:
        """Predicted chance that `core` produces code that validates, or None while it has too few runs."""
        return self.probability(core, plan_features(operations))

    def probability(self, core: str, features: Sequence[float]) -> float | None:
        """`success_probability` of a plan already turned into its features (`plan_features`)."""
        if self.examples.get(core, 0) < self.min_examples or core not in self.weights:
            return None
        return _sigmoid(_dot(self.weights[core], features))

    def choose(self, operations: Sequence[Mapping[str, Any]], available: Sequence[str]) -> str:
        """The core to use: the least-tried one while any has too few runs, else the likeliest to succeed."""
        if len(available) == 1:
            return available[0]
        untried = [c for c in available if self.examples.get(c, 0) < self.min_examples]
        if untried:
            return min(untried, key=lambda c: (self.examples.get(c, 0), available.index(c)))
        return max(available, key=lambda c: (self.success_probability(c, operations) or 0.0, -available.index(c)))

    def save(self, path: Path) -> None:
        """Write as JSON (atomically)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(self) | {"features": FEATURES}, indent=2), encoding="utf-8")
        temporary.replace(path)

    @classmethod
    def load(cls, path: Path) -> CorePredictor:
        """Read a saved predictor; a damaged file is an InputError saying how to rebuild it."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if tuple(data.pop("features")) != FEATURES:
                raise ValueError("it was trained on other features")
            return cls(**data)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(
                f"cannot use the core predictor {path}: {exc}", hint="retrain it: diffusellm learn train-core"
            ) from None


def training_rows(outcomes: Sequence[Outcome]) -> dict[str, list[tuple[list[float], bool]]]:
    """(features, validated) of every remembered run that generated code, by the core that wrote it."""
    rows: dict[str, list[tuple[list[float], bool]]] = {core: [] for core in CORES}
    for outcome in outcomes:
        if outcome.core in rows and outcome.generated():
            rows[outcome.core].append((plan_features(outcome.operations), outcome.status == "succeeded"))
    return rows


def train_core_predictor(outcomes: Sequence[Outcome], *, min_examples: int = 8) -> CorePredictor:
    """Fit one success model per core on the remembered runs."""
    rows = training_rows(outcomes)
    return CorePredictor(
        weights={core: fit_logistic(r) for core, r in rows.items() if r},
        examples={core: len(r) for core, r in rows.items()},
        successes={core: sum(1 for _, ok in r if ok) for core, r in rows.items()},
        min_examples=min_examples,
        trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
