"""Planning: candidates from a scripted model, ranked by the scorer and cheap graph features; and the
runner from a free-text issue through plans, trying the next plan when one fails."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from diffusellm.config import load_settings
from diffusellm.errors import SpecError
from diffusellm.pipeline.issue_plan import overlap_localiser
from diffusellm.pipeline.job import Models
from diffusellm.pipeline.locate.context import Localised, localise_by_overlap
from diffusellm.pipeline.plan.candidates import Plan, operations_json, propose
from diffusellm.pipeline.runner import run_issue
from diffusellm.pipeline.settings import CollaborationLimits, GenerationSettings, PlanOptions
from diffusellm.pipeline.spec import EditFunction, RenameSymbol, Spec
from diffusellm.pipeline.understand.digest.build import digest_repository
from diffusellm.pipeline.understand.graph import KnowledgeGraph
from diffusellm.pipeline.understand.style.infer import profile_style
from diffusellm.pipeline.validate.sandbox import BubblewrapSandbox
from tests.conftest import git, make_repo
from tests.fakes.scripted_llm import ScriptedLLM

TEXT = '''\
"""Text helpers."""


def shout(text: str) -> str:
    """Upper-case the text."""
    return text.upper()


def greet(name: str) -> str:
    """A loud greeting."""
    return shout("hello " + name)


def farewell(name: str) -> str:
    """A loud goodbye."""
    return shout("bye " + name)
'''
TEST = 'from pkg.text import greet, shout\n\n\ndef test_shout() -> None:\n    assert shout("hi") == "HI"\n\n\ndef test_greet() -> None:\n    assert greet("bo") == "HELLO BO"\n'
ISSUE = "# Shouting keeps spaces\n\n`shout('  hi ')` returns `'  HI '`; it should strip the spaces first.\n"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"pkg/__init__.py": "", "pkg/text.py": TEXT, "tests/test_text.py": TEST})


@pytest.fixture
def grounded(repo: Path, tmp_path: Path) -> Iterator[tuple[Localised, Any, KnowledgeGraph]]:
    db = tmp_path / "graph.sqlite"
    digest_repository(repo, db)
    graph = KnowledgeGraph(db)
    yield localise_by_overlap(repo, db, ISSUE), profile_style(repo), graph
    graph.close()


SPEC = Spec(
    title="Strip before shouting",
    operations=[EditFunction(op="edit_function", target="pkg.text.shout", instruction="strip first")],
)


def _plan_reply(ops: list[dict[str, Any]], rationale: str = "because") -> str:
    return json.dumps({"rationale": rationale, "operations": ops})


def test_propose_asks_for_k_distinct_candidates_with_varied_sampling(
    grounded: tuple[Localised, Any, KnowledgeGraph],
) -> None:
    loc, profile, _ = grounded
    same = _plan_reply([{"op": "edit_function", "target": "pkg.text.shout", "instruction": "strip first"}])
    other = _plan_reply(
        [{"op": "edit_function", "target": "pkg.text.shout", "instruction": "call strip() first"}], "strip, then shout"
    )
    llm = ScriptedLLM(replies=[same, other, other])
    plans, dropped = propose(
        SPEC, llm=llm, loc=loc, profile=profile, options=PlanOptions(candidates=3, temperature=0.9, seed=7)
    )
    assert [p.origin for p in plans] == ["spec", "model"]
    assert plans[1].rationale == "strip, then shout" and dropped == []
    calls = llm.of_kind("generate_json")
    assert [(c.temperature, c.seed) for c in calls] == [(0.0, 7), (0.9, 8), (0.9, 9)]
    assert "def shout(text: str) -> str:" in calls[0].prompt  # grounded in the localised source


def test_an_unusable_candidate_is_dropped_with_its_reason(grounded: tuple[Localised, Any, KnowledgeGraph]) -> None:
    loc, profile, _ = grounded
    llm = ScriptedLLM(
        replies=[_plan_reply([{"op": "edit_function", "target": "pkg.text.nope", "instruction": "x"}])],
        check_schema=False,
    )
    plans, dropped = propose(SPEC, llm=llm, loc=loc, profile=profile, options=PlanOptions(candidates=1))
    assert len(plans) == 1
    assert dropped and "'pkg.text.nope' is not one of the repository's candidates" in dropped[0]


def test_ranking_weighs_likelihood_graph_impact_and_naming(grounded: tuple[Localised, Any, KnowledgeGraph]) -> None:
    loc, profile, graph = grounded
    from diffusellm.pipeline.plan.candidates import rank

    edit = Plan(operations=list(SPEC.operations))
    rename = Plan(operations=[RenameSymbol(op="rename_symbol", target="pkg.text.shout", new_name="yell")])
    llm = ScriptedLLM(scores=[-10.0, -10.0])
    ranked = rank([edit, rename], scorer=llm, messages=[], graph=graph, loc=loc, profile=profile, options=PlanOptions())
    by_op = {p.operations[0].op: p for p in ranked}
    assert by_op["rename_symbol"].features.graph_impact == 3  # greet, farewell and test_shout call shout
    assert by_op["rename_symbol"].features.files_touched == 2  # the rename rewrites the test file's call too
    assert (by_op["edit_function"].features.files_touched, by_op["edit_function"].features.graph_impact) == (1, 3)
    assert by_op["rename_symbol"].features.log_likelihood == pytest.approx(
        -10.0 / ((len(operations_json(rename.operations)) + 3) // 4), abs=1e-3
    )
    assert [p.score for p in ranked] == sorted((p.score for p in ranked), reverse=True)
    assert len(llm.of_kind("score")) == 2


def test_a_name_against_the_convention_ranks_below_an_equally_likely_one(
    grounded: tuple[Localised, Any, KnowledgeGraph],
) -> None:
    loc, profile, graph = grounded
    from diffusellm.pipeline.plan.candidates import rank

    good = Plan(operations=[RenameSymbol(op="rename_symbol", target="pkg.text.farewell", new_name="good_bye")])
    bad = Plan(operations=[RenameSymbol(op="rename_symbol", target="pkg.text.farewell", new_name="goodBye")])
    ranked = rank([bad, good], scorer=None, messages=[], graph=graph, loc=loc, profile=profile, options=PlanOptions())
    assert [p.operations[0] for p in ranked] == [good.operations[0], bad.operations[0]]
    assert ranked[1].features.naming_conformance == 0.0


def test_plans_past_the_thresholds_require_approval(grounded: tuple[Localised, Any, KnowledgeGraph]) -> None:
    loc, profile, graph = grounded
    from diffusellm.pipeline.plan.candidates import rank

    plan = Plan(operations=[RenameSymbol(op="rename_symbol", target="pkg.text.shout", new_name="yell")])
    ranked = rank(
        [plan], scorer=None, messages=[], graph=graph, loc=loc, profile=profile, options=PlanOptions(approval_callers=1)
    )
    assert ranked[0].requires_approval
    assert ranked[0].approval_reasons == ["changes code with 3 callers (more than 1)"]


# ---------------------------------------------------------------- the runner from free text


def _normalised(ops: list[dict[str, Any]], confidence: float = 0.9, question: str = "") -> str:
    return json.dumps(
        {"title": "Strip spaces before shouting", "operations": ops, "confidence": confidence, "question": question}
    )


def _models(llm: ScriptedLLM, **limits: Any) -> Models:
    generation = GenerationSettings(
        normalise="draft",  # the scripted replies below are whole draft specs
        plan=PlanOptions(candidates=1),
        limits=CollaborationLimits(**limits),
    )
    return Models(llm=llm, localiser=overlap_localiser, generation=generation)


def test_free_text_issue_tries_the_next_plan_when_the_best_fails(tmp_path: Path, repo: Path) -> None:
    settings = load_settings(None, [f"state_dir={tmp_path / 'state'}", "validation.environment.build=false", "validation.pyright=false"])
    llm = ScriptedLLM(
        replies=[
            _normalised([{"op": "edit_function", "target": "pkg.text.shout", "instruction": "strip, then upper-case"}]),
            _plan_reply(
                [{"op": "edit_function", "target": "pkg.text.shout", "instruction": "call strip() before upper()"}]
            ),
            "return text.lower()",  # plan 1 fails its test and has no attempt left
            "return text.strip().upper()",  # plan 2 passes
        ],
        scores=[-1.0, -50.0],
    )
    report = run_issue(settings, ISSUE, repo, sandbox=BubblewrapSandbox(), models=_models(llm, max_attempts_per_plan=1))
    assert report.status == "succeeded", report.attempts
    assert [(a.plan_index, a.validation) for a in report.attempts] == [(0, "pytest: 2 new failure(s)"), (1, "passed")]
    assert report.spec is not None and report.spec.title == "Strip spaces before shouting"
    assert report.plan is not None and report.plan.origin == "model"
    assert report.core == "llm"  # no diffusion model configured: the LLM filled the code
    op = report.plan.operations[0]
    assert isinstance(op, EditFunction) and op.source is not None and "text.strip().upper()" in op.source
    assert report.branch and "return text.strip().upper()" in git(repo, "show", f"{report.branch}:pkg/text.py")


def test_free_text_issue_the_model_is_unsure_of_gets_a_question(tmp_path: Path, repo: Path) -> None:
    settings = load_settings(None, [f"state_dir={tmp_path / 'state'}", "validation.environment.build=false"])
    llm = ScriptedLLM(replies=[_normalised([], confidence=0.1, question="Which helper should strip spaces?")])
    report = run_issue(settings, "Spaces are annoying.", repo, sandbox=BubblewrapSandbox(), models=_models(llm))
    assert report.status == "needs_clarification" and report.question == "Which helper should strip spaces?"
    assert report.branch is None and report.changed_files == [] and report.spec is None
    assert "Which helper should strip spaces?" in Path(report.summary_path).read_text(encoding="utf-8")
    assert git(repo, "status", "--porcelain") == ""


def test_an_issue_with_a_yaml_block_runs_without_any_model(tmp_path: Path, repo: Path) -> None:
    settings = load_settings(None, [f"state_dir={tmp_path / 'state'}", "validation.environment.build=false", "validation.pyright=false"])
    issue = "Rename it please.\n\n```yaml\ntitle: Rename farewell\noperations:\n  - op: rename_symbol\n    target: pkg.text.farewell\n    new_name: goodbye\n```\n"
    report = run_issue(settings, issue, repo, sandbox=BubblewrapSandbox())
    assert report.status == "succeeded" and report.attempts == [] and report.plan is None


def test_free_text_without_a_model_is_refused_with_a_hint(tmp_path: Path, repo: Path) -> None:
    settings = load_settings(None, [f"state_dir={tmp_path / 'state'}", "validation.environment.build=false"])
    with pytest.raises(SpecError, match="no ```yaml spec block, and no language model") as info:
        run_issue(settings, ISSUE, repo, sandbox=BubblewrapSandbox())
    assert "docs/SPEC.md" in info.value.hint


def test_a_separate_normaliser_model_reads_the_issue(tmp_path: Path, repo: Path) -> None:
    settings = load_settings(None, [f"state_dir={tmp_path / 'state'}", "validation.environment.build=false"])
    reader, llm = ScriptedLLM(name="reader"), ScriptedLLM(name="writer")
    generation = GenerationSettings(plan=PlanOptions(candidates=0))
    models = Models(llm=llm, normaliser=reader, localiser=overlap_localiser, generation=generation)
    report = run_issue(settings, "Everything is confusing, please improve it.", repo, sandbox=BubblewrapSandbox(), models=models)
    assert report.status == "needs_clarification" and report.question
    assert reader.of_kind("score"), "the normaliser model weighed the readings"
    assert llm.calls == [], "the code-writing model was not asked to read the issue"
