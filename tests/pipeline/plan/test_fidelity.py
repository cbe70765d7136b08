"""The spec decides the plan: deterministic operations run as written, candidates that do not carry out
the spec are dropped or refused, additions only when the issue asks, failed scoring ranks last."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from diffusellm.models.base import ModelError
from diffusellm.pipeline.deliver.text import change_title
from diffusellm.pipeline.issue_plan import refuse_unfaithful
from diffusellm.pipeline.locate.context import Localised, localise_by_overlap
from diffusellm.pipeline.plan.candidates import Plan, plan_change, plan_from_spec, propose, rank
from diffusellm.pipeline.plan.fidelity import asked_extras, unmet
from diffusellm.pipeline.settings import PlanOptions
from diffusellm.pipeline.spec import AddTest, EditFunction, MoveSymbol, RenameSymbol, Spec
from diffusellm.pipeline.understand.digest.build import digest_repository
from diffusellm.pipeline.understand.graph import KnowledgeGraph
from diffusellm.pipeline.understand.style.infer import profile_style
from tests.conftest import make_repo
from tests.fakes.scripted_llm import Call, ScriptedLLM
from tests.pipeline.plan.test_candidates import TEST, TEXT

RENAME = RenameSymbol(op="rename_symbol", target="pkg.text.farewell", new_name="goodbye")
TEST_OP = {"op": "add_test", "target": "pkg.text.farewell", "path": "tests/test_text.py", "instruction": "check it"}
TEST_DRAFT = {"op": "add_test", "target": "pkg.text.farewell", "instruction": "check it"}
EDIT = EditFunction(op="edit_function", target="pkg.text.shout", instruction="strip first")


@pytest.fixture
def grounded(tmp_path: Any) -> Iterator[tuple[Localised, Any, KnowledgeGraph]]:
    repo = make_repo(tmp_path / "repo", {"pkg/__init__.py": "", "pkg/text.py": TEXT, "tests/test_text.py": TEST})
    db = tmp_path / "graph.sqlite"
    digest_repository(repo, db)
    graph = KnowledgeGraph(db)
    yield localise_by_overlap(repo, db, "farewell and shout"), profile_style(repo), graph
    graph.close()


def _reply(ops: list[dict[str, Any]]) -> str:
    return json.dumps({"rationale": "because", "operations": ops})


def _rename_spec(description: str) -> Spec:
    return Spec(title="Rename farewell", description=description, operations=[RENAME])


def test_a_deterministic_spec_is_its_own_plan_and_asks_no_model(
    grounded: tuple[Localised, Any, KnowledgeGraph],
) -> None:
    loc, profile, graph = grounded
    llm = ScriptedLLM(replies=[_reply([TEST_DRAFT])] * 3)
    spec = _rename_spec("farewell should be called goodbye")
    plans, dropped = plan_change(spec, llm=llm, scorer=llm, graph=graph, loc=loc, profile=profile)
    assert [p.operations for p in plans] == [[RENAME]] and plans[0].origin == "spec" and dropped == []
    assert llm.calls == []


def test_an_issue_that_asks_for_a_test_too_gets_both_and_a_swap_is_dropped(
    grounded: tuple[Localised, Any, KnowledgeGraph],
) -> None:
    loc, profile, graph = grounded
    rename = RENAME.model_dump(mode="json")
    rename = {"op": "rename_function", "target": rename["target"], "new_name": rename["new_name"]}
    llm = ScriptedLLM(replies=[_reply([TEST_DRAFT]), _reply([rename, TEST_DRAFT])], scores=[-1.0, -9.0])
    spec = _rename_spec("Please call farewell goodbye instead, and add a test for it.")
    assert asked_extras(spec) == {"add_test"}
    plans, dropped = plan_change(
        spec, llm=llm, scorer=llm, graph=graph, loc=loc, profile=profile, options=PlanOptions(candidates=2)
    )
    assert len(dropped) == 1 and "leaves out rename_symbol pkg.text.farewell" in dropped[0]
    assert [[op.op for op in p.operations] for p in plans] == [["rename_symbol", "add_test"], ["rename_symbol"]]
    assert plans[0].features.missing_asked == 0 and plans[1].features.missing_asked == 1  # despite its score


def test_a_candidate_that_adds_an_unasked_refactor_is_dropped(
    grounded: tuple[Localised, Any, KnowledgeGraph],
) -> None:
    loc, profile, _ = grounded
    invented = [
        {"op": "edit_function", "target": "pkg.text.shout", "instruction": "strip first"},
        {"op": "rename_function", "target": "pkg.text.greet", "new_name": "hi"},
    ]
    llm = ScriptedLLM(replies=[_reply(invented)])
    spec = Spec(title="Strip", description="shout should strip spaces", operations=[EDIT])
    plans, dropped = propose(spec, llm=llm, loc=loc, profile=profile, options=PlanOptions(candidates=1))
    assert [p.origin for p in plans] == ["spec"]
    assert "adds rename_symbol pkg.text.greet, which the issue does not ask for" in dropped[0]


def test_unmet_names_what_a_plan_changes_of_its_spec() -> None:
    spec = _rename_spec("")
    other_name = RENAME.model_copy(update={"new_name": "bye"})
    assert unmet(spec, [RENAME]) == []
    assert unmet(spec, [other_name]) == [
        "leaves out rename_symbol pkg.text.farewell, which the spec asks for",
        "adds rename_symbol pkg.text.farewell, which the issue does not ask for",
    ]
    reworded = EDIT.model_copy(update={"instruction": "call strip() before upper()"})
    assert unmet(Spec(title="t", operations=[EDIT]), [reworded]) == []  # same kind and target


def test_a_plan_that_does_not_carry_out_its_spec_is_refused() -> None:
    spec = _rename_spec("farewell should be called goodbye")
    swapped = Plan(operations=[AddTest.model_validate(TEST_OP)], origin="model")
    kept, refused = refuse_unfaithful(spec, [swapped, plan_from_spec(spec)])
    assert [p.operations for p in kept] == [[RENAME]]
    assert refused == [
        "plan 1 refused: it leaves out rename_symbol pkg.text.farewell, which the spec asks for; "
        "it adds add_test pkg.text.farewell, which the issue does not ask for"
    ]


def test_a_plan_whose_scoring_fails_ranks_last(grounded: tuple[Localised, Any, KnowledgeGraph]) -> None:
    loc, profile, graph = grounded

    def scores(call: Call) -> float:
        if "strip first" in call.continuation:
            raise ModelError("the scorer ran out of memory")
        return -40.0

    failing = Plan(operations=[EDIT])
    scored = Plan(operations=[EDIT.model_copy(update={"instruction": "strip the text"})])
    ranked = rank(
        [failing, scored],
        scorer=ScriptedLLM(scores=scores),
        messages=[],
        graph=graph,
        loc=loc,
        profile=profile,
        options=PlanOptions(),
    )
    assert [p.operations for p in ranked] == [scored.operations, failing.operations]
    assert ranked[1].features.scoring_failed and not ranked[0].features.scoring_failed


def test_titles_say_what_the_operations_change() -> None:
    test = AddTest.model_validate(TEST_OP)
    assert change_title(Spec(title="farewell is a confusing name", operations=[RENAME])) == "Rename farewell to goodbye"
    both = Spec(title="Rename farewell", operations=[RENAME, test])
    assert change_title(both) == "Rename farewell to goodbye and add a test for farewell"
    assert change_title(Spec(title="Rename farewell", operations=[test])) == "Add a test for farewell"
    assert change_title(Spec(title="Strip spaces before shouting", operations=[EDIT])) == "Strip spaces before shouting"
    move = MoveSymbol(op="move_symbol", target="pkg.text.shout", to_module="pkg.loud")
    assert change_title(Spec(title="t", operations=[move, RENAME, test])) == (
        "Move shout to pkg.loud, rename farewell to goodbye and add a test for farewell"
    )
