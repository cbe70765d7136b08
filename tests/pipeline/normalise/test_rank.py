"""Ranked normalisation: the issue's wording and the code it names choose the change kind and target,
the model breaks ties, parameters come from the issue, and what is missing becomes a question."""

from __future__ import annotations

import json

import pytest

from diffusellm.models.base import ModelError
from diffusellm.pipeline.locate.context import Localised, Symbol
from diffusellm.pipeline.normalise.cues import read_issue
from diffusellm.pipeline.normalise.issue import NeedsClarification, normalise_issue
from diffusellm.pipeline.normalise.rank import KINDS, compatible, rank_options
from diffusellm.pipeline.normalise.rules import rule_spec
from diffusellm.pipeline.spec import AddParameter, AddTest, EditFunction, MoveSymbol, RemoveParameter, RenameSymbol
from diffusellm.pipeline.understand.style.profile import StyleProfile
from tests.fakes.scripted_llm import Call, ScriptedLLM

SYMBOLS = (
    Symbol("board.helpers.slugify", "function", "board/helpers.py", 1, 9, "(text: str) -> str"),
    Symbol("board.helpers.today", "function", "board/helpers.py", 10, 12, "() -> str"),
    Symbol("board.service.Service", "class", "board/service.py", 1, 40, ""),
    Symbol(
        "board.service.Service.__init__",
        "method",
        "board/service.py",
        3,
        8,
        "(self, store: str, verbose: bool = False) -> None",
    ),
    Symbol("board.service.Service.describe", "method", "board/service.py", 10, 20, "(self, task: str) -> str"),
)
LOC = Localised(
    symbols=SYMBOLS,
    modules=("board", "board.helpers", "board.service"),
    test_files=("tests/test_helpers.py",),
    context="",
)
PROFILE = StyleProfile()


def _first(issue: str, llm: ScriptedLLM | None = None, weight: float = 0.35) -> tuple[str, str]:
    best = rank_options(read_issue(issue), LOC, llm or ScriptedLLM(), model_weight=weight).options[0]
    return best.op, best.target.qualname


def test_wording_and_named_code_choose_the_kind_and_target() -> None:
    assert _first("The name `describe` on Service is vague. Can we call it `render_task`?") == (
        "rename_symbol",
        "board.service.Service.describe",
    )
    assert _first("slugify should take a `max_length` argument") == ("add_parameter", "board.helpers.slugify")
    assert _first("Add a test that slugify drops apostrophes.") == ("add_test", "board.helpers.slugify")
    assert _first("slugify keeps apostrophes; it should drop them.") == ("edit_function", "board.helpers.slugify")


def test_naming_a_class_counts_for_its_constructors_parameters() -> None:
    assert _first("We no longer need the `verbose` option of the Service constructor, drop it.") == (
        "remove_parameter",
        "board.service.Service.__init__",
    )


def test_each_kind_only_targets_what_it_can_change() -> None:
    assert all(s.kind in ("function", "method") for s in compatible("edit_function", LOC))
    assert [s.qualname for s in compatible("move_symbol", LOC)] == [
        "board.helpers.slugify",
        "board.helpers.today",
        "board.service.Service",
    ]
    assert [s.kind for s in compatible("add_function", LOC)] == ["module"] * 3
    assert compatible("add_function", LOC)[0].qualname == "board.helpers"  # where the best functions live


def _prefers(phrase: str) -> ScriptedLLM:
    """A scorer that likes `phrase` when it sees an issue, and nothing in particular without one."""

    def score(call: Call) -> float:
        asked = "(empty)" not in call.prompt
        return 0.0 if (asked and call.continuation == phrase) else -5.0

    return ScriptedLLM(scores=score)


def test_the_model_breaks_ties_the_wording_leaves_and_weight_zero_ignores_it() -> None:
    issue = "slugify and apostrophes."  # names the code, asks for nothing in particular
    assert _first(issue, _prefers(KINDS["add_test"])) == ("add_test", "board.helpers.slugify")
    assert _first(issue, _prefers(KINDS["add_test"]), weight=0.0) == ("edit_function", "board.helpers.slugify")


def test_a_scorer_that_fails_counts_as_no_preference() -> None:
    def broken(_: Call) -> float:
        raise ModelError("endpoint down")

    assert _first("slugify keeps apostrophes; it should drop them.", ScriptedLLM(scores=broken)) == (
        "edit_function",
        "board.helpers.slugify",
    )


def _normalise(issue: str, llm: ScriptedLLM | None = None) -> object:
    return normalise_issue(issue, llm=llm or ScriptedLLM(), loc=LOC, profile=PROFILE)


def test_a_behaviour_change_becomes_an_edit_whose_instruction_is_the_issue() -> None:
    llm = ScriptedLLM()
    spec = _normalise("# Apostrophes\n\nslugify keeps apostrophes; it should drop them.", llm)
    assert not isinstance(spec, NeedsClarification)
    assert spec.title == "Apostrophes"
    op = spec.operations[0]
    assert isinstance(op, EditFunction) and op.target == "board.helpers.slugify"
    assert op.instruction == "# Apostrophes slugify keeps apostrophes; it should drop them."
    assert {c.kind for c in llm.calls} == {"score"}  # the model only scored; nothing was generated


def test_parameters_come_from_the_issue() -> None:
    added = _normalise("Long titles give huge slugs. slugify needs a `max_length` argument, default 60.")
    assert not isinstance(added, NeedsClarification)
    assert added.operations[0] == AddParameter(
        op="add_parameter", target="board.helpers.slugify", name="max_length", default="60", annotation="int", kind="keyword_only"
    )
    removed = _normalise("We no longer need the `verbose` option of the Service constructor, drop it.")
    assert not isinstance(removed, NeedsClarification)
    assert removed.operations[0] == RemoveParameter(
        op="remove_parameter", target="board.service.Service.__init__", name="verbose"
    )
    moved = _normalise("slugify is about text; it belongs in board.text.")
    assert not isinstance(moved, NeedsClarification)
    assert moved.operations[0] == MoveSymbol(op="move_symbol", target="board.helpers.slugify", to_module="board.text")
    tested = _normalise("There is no test for slugify with apostrophes.")
    assert not isinstance(tested, NeedsClarification)
    assert isinstance(tested.operations[0], AddTest) and tested.operations[0].path == "tests/test_helpers.py"


def test_a_parameter_wished_for_in_plain_words_is_added_with_the_name_the_issue_gives() -> None:
    # neither the name nor the word "parameter" written as code; a "name" is not a wish to rename
    wished = _normalise("The Service class should have a timeout argument, for slow stores.")
    assert not isinstance(wished, NeedsClarification)
    assert wished.operations[0] == AddParameter(
        op="add_parameter", target="board.service.Service.__init__", name="timeout", default="None",
        kind="keyword_only")
    named = _normalise("It would help if slugify could support a name option for the separator's label.")
    assert not isinstance(named, NeedsClarification)
    assert (named.operations[0].op, getattr(named.operations[0], "name", None)) == ("add_parameter", "name")
    passed = _normalise("Could we pass the `locale` as a keyword argument to slugify?")
    assert not isinstance(passed, NeedsClarification)
    assert passed.operations[0] == AddParameter(
        op="add_parameter", target="board.helpers.slugify", name="locale", default="None",
        kind="keyword_only")


def test_lists_of_renames_move_destinations_written_whole_and_own_modules() -> None:
    both = _normalise("Renaming for clarity:\n- `slugify` -> `make_slug`\n- `today` → `current_day`")
    assert not isinstance(both, NeedsClarification)
    assert both.operations == [
        RenameSymbol(op="rename_symbol", target="board.helpers.slugify", new_name="make_slug"),
        RenameSymbol(op="rename_symbol", target="board.helpers.today", new_name="current_day"),
    ]
    assert rule_spec("Renaming: `slugify` -> `make_slug`, `nowhere` -> `x`", LOC, "t") is None  # all or none
    assert rule_spec("Shall we rename slugify to a clearer name?", LOC, "t") is None  # "a" is no name
    whole = _normalise("Please move board.helpers.slugify to board.service.slugify.")
    assert not isinstance(whole, NeedsClarification)
    assert whole.operations == [MoveSymbol(op="move_symbol", target="board.helpers.slugify",
                                           to_module="board.service")]
    basket = Localised(symbols=(Symbol("shop.Basket", "class", "shop/__init__.py", 5, 90, ""),),
                       modules=("shop", "shop.prices"), test_files=(), context="")
    own = normalise_issue("The Basket class is too big for the package file; it should move into its own "
                          "module.", llm=ScriptedLLM(), loc=basket, profile=PROFILE)
    assert not isinstance(own, NeedsClarification)
    assert own.operations == [MoveSymbol(op="move_symbol", target="shop.Basket", to_module="shop.basket")]
    taken = Localised(symbols=basket.symbols, modules=("shop", "shop.basket"), test_files=(), context="")
    asked = normalise_issue("Basket should move into its own module.", llm=ScriptedLLM(), loc=taken,
                            profile=PROFILE)
    assert isinstance(asked, NeedsClarification) and "Which module" in asked.question


def test_a_new_name_the_issue_does_not_give_is_written_by_the_model_in_the_convention() -> None:
    llm = ScriptedLLM(replies=[json.dumps({"name": "make_slug"})])
    spec = _normalise("slugify is a poor name, please rename it.", llm)
    assert not isinstance(spec, NeedsClarification)
    assert spec.operations[0] == RenameSymbol(op="rename_symbol", target="board.helpers.slugify", new_name="make_slug")
    schema = llm.of_kind("generate_json")[0].schema
    assert schema is not None and "pattern" in json.dumps(schema)  # constrained to snake_case
    same = _normalise(
        "slugify is a poor name, please rename it.", ScriptedLLM(replies=[json.dumps({"name": "slugify"})])
    )
    assert isinstance(same, NeedsClarification)
    assert same.question == "What should `board.helpers.slugify` be called?"


def test_a_move_without_a_destination_asks_where() -> None:
    result = _normalise("Move `slugify` somewhere more sensible.")
    assert isinstance(result, NeedsClarification)
    assert result.question == "Which module should `board.helpers.slugify` move to?"


@pytest.mark.parametrize("issue", ["The documentation is confusing.", "It doesn't work on my machine. Please fix."])
def test_an_issue_naming_no_code_asks_which_reading_is_meant(issue: str) -> None:
    result = _normalise(issue)
    assert isinstance(result, NeedsClarification)
    assert result.question.startswith("I could not tell which change this issue asks for. Do you mean: ")
    assert "`board." in result.question and "names none of the code" in result.reason
    assert result.draft is not None and result.draft["grounded"] is False and result.draft["options"]


def test_an_option_that_cannot_apply_gives_way_to_the_next() -> None:
    # `today` has no parameter to remove: the next reading is taken instead of failing
    spec = _normalise("Remove the unused argument of today, please.")
    assert not isinstance(spec, NeedsClarification)
    assert spec.operations[0].op != "remove_parameter" or spec.operations[0].target != "board.helpers.today"


def test_a_new_function_is_only_written_when_the_issue_asks_for_one() -> None:
    vague = _normalise("Everything in the helpers is confusing.")  # names the module in plain words
    assert isinstance(vague, NeedsClarification)
    asked = _normalise("Please add a new helper function `is_blank` to helpers that tells whether a title is empty.")
    assert not isinstance(asked, NeedsClarification)
    op = asked.operations[0]
    assert (op.op, op.target) == ("add_function", "board.helpers.is_blank")
