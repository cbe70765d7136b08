"""Core selection: a per-core success model learned from remembered runs picks the diffusion model or
the LLM; a core with too few runs is tried first; the choice reaches the generation loop."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from diffusellm.errors import InputError
from diffusellm.learn.core_predictor import CorePredictor, plan_features, train_core_predictor, training_rows
from diffusellm.learn.outcomes import Outcome
from diffusellm.models.base import Hole, ModelInfo
from diffusellm.pipeline.issue_job import choose_core
from diffusellm.pipeline.job import Models
from diffusellm.pipeline.plan.candidates import Plan
from diffusellm.pipeline.spec import EditFunction

_ids = itertools.count()
EDIT = {"op": "edit_function", "target": "pkg.m.f", "instruction": "strip spaces"}
TEST = {"op": "add_test", "target": "pkg.m.f", "path": "tests/test_m.py", "instruction": "a test for f " * 10}


def _outcome(core: str | None, ops: list[dict[str, Any]], succeeded: bool) -> Outcome:
    return Outcome(
        job_id=f"run-{next(_ids)}",
        repo="/r",
        created_at="2026-11-26T08:00:00+00:00",
        status="succeeded" if succeeded else "generation_failed",
        branch=None,
        commit=None,
        base_commit="0" * 40,
        title="t",
        description="",
        operations=ops,
        changed_files=[],
        attempts=1,
        verdict="none",
        verdict_source=None,
        verdict_at=None,
        core=core,
    )


def _history(per_kind: int) -> list[Outcome]:
    """Diffusion validates edits and fails tests; the LLM does the opposite."""
    runs: list[Outcome] = []
    for _ in range(per_kind):
        runs += [_outcome("diffusion", [EDIT], True), _outcome("diffusion", [TEST], False)]
        runs += [_outcome("llm", [EDIT], False), _outcome("llm", [TEST], True)]
    return runs


def test_features_count_generated_kinds_and_measure_text_and_code() -> None:
    features = plan_features(
        [
            EDIT,
            TEST,
            {"op": "rename_symbol", "target": "x", "new_name": "y"},
            {"op": "edit_function", "target": "g", "body": "a = 1\nreturn a\n"},
        ]
    )
    assert features[:4] == [1.0, 2.0, 0.0, 1.0]
    assert features[4] > 0 and features[5] == pytest.approx(1.0986, abs=1e-3)  # log1p(2 lines)


def test_each_core_is_chosen_where_it_has_validated_before() -> None:
    predictor = train_core_predictor(_history(5), min_examples=8)
    assert predictor.examples == {"diffusion": 10, "llm": 10} and predictor.successes == {"diffusion": 5, "llm": 5}
    both = ("diffusion", "llm")
    assert predictor.choose([EDIT], both) == "diffusion"
    assert predictor.choose([TEST], both) == "llm"
    assert predictor.choose([TEST], ("diffusion",)) == "diffusion"
    p_edit = predictor.success_probability("diffusion", [EDIT])
    assert p_edit is not None and p_edit > 0.5


def test_a_core_with_too_few_runs_is_tried_first() -> None:
    history = _history(5) + [_outcome("llm", [EDIT], True)]
    few_llm = [o for o in history if o.core == "diffusion"] + [o for o in history if o.core == "llm"][:3]
    predictor = train_core_predictor(few_llm, min_examples=8)
    assert predictor.success_probability("llm", [TEST]) is None
    assert predictor.choose([EDIT], ("diffusion", "llm")) == "llm"  # explore, even where diffusion does well


def test_runs_without_generated_code_or_core_teach_nothing() -> None:
    rename = {"op": "rename_symbol", "target": "x", "new_name": "y"}
    rows = training_rows([_outcome("llm", [rename], True), _outcome(None, [EDIT], True), _outcome("llm", [EDIT], True)])
    assert [len(rows["diffusion"]), len(rows["llm"])] == [0, 1]


def test_the_predictor_survives_a_round_trip_and_a_damaged_file_says_how_to_rebuild(tmp_path: Path) -> None:
    predictor = train_core_predictor(_history(5), min_examples=8)
    path = tmp_path / "learn" / "core_predictor.json"
    predictor.save(path)
    assert CorePredictor.load(path) == predictor
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match="cannot use the core predictor") as info:
        CorePredictor.load(path)
    assert "learn train-core" in info.value.hint


class _FakeDenoiser:
    """Stands for a loaded diffusion model (a test fake: only its presence matters here)."""

    def info(self) -> ModelInfo:
        return ModelInfo(name="fake-denoiser", backend="fake", device="cpu", dtype="float32")

    def fill(self, scaffold: Any, **_: Any) -> list[str]:
        return ["" for part in scaffold if isinstance(part, Hole)]


def test_the_generation_loop_uses_the_core_the_chooser_picks() -> None:
    plan = Plan(operations=[EditFunction(op="edit_function", target="pkg.m.f", instruction="x")], origin="spec")
    asked: list[tuple[list[dict[str, Any]], tuple[str, ...]]] = []

    def chooser(ops: Any, available: Any) -> str:
        asked.append((list(ops), tuple(available)))
        return "llm"

    assert choose_core(Models(), plan) == "llm"  # no diffusion model: always the LLM, nobody asked
    assert choose_core(Models(denoiser=_FakeDenoiser()), plan) == "diffusion"  # no predictor: the default
    assert choose_core(Models(denoiser=_FakeDenoiser(), core_chooser=chooser), plan) == "llm"
    assert asked == [
        (
            [
                {
                    "op": "edit_function",
                    "target": "pkg.m.f",
                    "source": None,
                    "body": None,
                    "instruction": "x",
                    "signature_may_change": False,
                }
            ],
            ("diffusion", "llm"),
        )
    ]
