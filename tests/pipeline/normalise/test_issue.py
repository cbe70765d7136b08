"""Spec normalisation: YAML wins, a scripted model's JSON becomes a Spec, doubt becomes a question,
and the schema only offers real qualnames and names in the repository's own convention."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, cast

import pytest

from diffusellm.errors import SpecError
from diffusellm.models.base import ModelError
from diffusellm.pipeline.locate.context import Localised, localise_by_overlap, read_symbols
from diffusellm.pipeline.normalise.draft import draft_spec_model, json_schema, parse_draft
from diffusellm.pipeline.normalise.issue import NeedsClarification, normalise_issue, spec_from_text
from diffusellm.pipeline.project import Project, resolve_target
from diffusellm.pipeline.spec import AddTest, EditFunction, RenameSymbol
from diffusellm.pipeline.understand.digest.build import digest_repository
from diffusellm.pipeline.understand.style.infer import conforms, profile_style
from tests.conftest import make_repo
from tests.fakes.scripted_llm import ScriptedLLM

CAMEL = '''\
"""Board helpers written in camelCase."""


def makeSlug(title: str) -> str:
    """Slug of a title."""
    return title.lower().replace(" ", "-")


def parseDueDate(text: str) -> str:
    """Due date from text."""
    return text.strip()


class TaskList:
    """Tasks."""

    def addTask(self, title: str) -> None:
        """Add one."""
        self.last = makeSlug(title)
'''

ISSUE = """# Slugs keep apostrophes

`makeSlug("Bob's task")` returns `bob's-task`; apostrophes should be dropped.
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(
        tmp_path / "repo",
        {
            "board/__init__.py": "",
            "board/helpers.py": CAMEL,
            "board/other.py": "def formatTitle(title: str) -> str:\n    return title.title()\n",
            "tests/test_helpers.py": "from board.helpers import makeSlug\n\n\ndef test_slug() -> None:\n    assert makeSlug('A b') == 'a-b'\n",
        },
    )


@pytest.fixture
def grounded(repo: Path, tmp_path: Path) -> tuple[Localised, Any, Path]:
    db = tmp_path / "graph.sqlite"
    digest_repository(repo, db)
    return localise_by_overlap(repo, db, ISSUE), profile_style(repo), db


def _answer(**fields: Any) -> str:
    base: dict[str, Any] = {
        "title": "Drop apostrophes from slugs",
        "operations": [],
        "confidence": 0.9,
        "question": "",
    }
    return json.dumps({**base, **fields})


def test_a_yaml_block_wins_and_no_model_is_asked(grounded: tuple[Localised, Any, Path]) -> None:
    loc, profile, _ = grounded
    llm = ScriptedLLM()
    issue = "Please rename it.\n\n```yaml\ntitle: Rename\noperations:\n  - op: rename_symbol\n    target: board.helpers.makeSlug\n    new_name: slugOf\n```\n"
    spec = normalise_issue(issue, llm=llm, loc=loc, profile=profile, method="draft")
    assert isinstance(spec, type(spec_from_text(issue)))
    assert not isinstance(spec, NeedsClarification)
    assert spec.operations[0] == RenameSymbol(op="rename_symbol", target="board.helpers.makeSlug", new_name="slugOf")
    assert llm.calls == []


def test_a_broken_yaml_block_is_an_error_not_a_model_question() -> None:
    with pytest.raises(SpecError, match="invalid spec"):
        spec_from_text("text\n```yaml\ntitle: t\noperations: []\n```\n")
    assert spec_from_text("Just prose: with a colon.\n\nAnd more.") is None


def test_scripted_json_becomes_a_spec(grounded: tuple[Localised, Any, Path]) -> None:
    loc, profile, _ = grounded
    ops = [
        {"op": "edit_function", "target": "board.helpers.makeSlug", "instruction": "drop apostrophes"},
        {"op": "add_test", "target": "board.helpers.makeSlug", "instruction": "Bob's task → bobs-task"},
    ]
    llm = ScriptedLLM(replies=[_answer(operations=ops)])
    spec = normalise_issue(ISSUE, llm=llm, loc=loc, profile=profile, method="draft")
    assert not isinstance(spec, NeedsClarification)
    assert spec.title == "Drop apostrophes from slugs"
    assert spec.operations[0] == EditFunction(
        op="edit_function", target="board.helpers.makeSlug", instruction="drop apostrophes"
    )
    test_op = spec.operations[1]
    assert isinstance(test_op, AddTest) and test_op.path == "tests/test_helpers.py"
    assert "apostrophes should be dropped" in spec.description
    prompt = llm.calls[0].prompt
    assert "board.helpers.makeSlug" in prompt and "Slugs keep apostrophes" in prompt


def test_low_confidence_becomes_a_concrete_question(grounded: tuple[Localised, Any, Path]) -> None:
    loc, profile, _ = grounded
    ops = [{"op": "edit_function", "target": "board.helpers.makeSlug", "instruction": "something"}]
    llm = ScriptedLLM(
        replies=[_answer(operations=ops, confidence=0.2, question="Should apostrophes become dashes or vanish?")]
    )
    result = normalise_issue(ISSUE, llm=llm, loc=loc, profile=profile, method="draft")
    assert isinstance(result, NeedsClarification)
    assert result.question == "Should apostrophes become dashes or vanish?"
    assert "0.20" in result.reason


def test_no_operation_and_no_question_still_asks_about_the_likeliest_targets(
    grounded: tuple[Localised, Any, Path],
) -> None:
    loc, profile, _ = grounded
    llm = ScriptedLLM(replies=[_answer(confidence=0.9)])
    result = normalise_issue(ISSUE, llm=llm, loc=loc, profile=profile, method="draft")
    assert isinstance(result, NeedsClarification)
    assert "`board.helpers.makeSlug`" in result.question
    assert result.reason == "the model found no operation to perform"


def _items(node: Any) -> list[tuple[str, Any]]:
    """(key, child) pairs of a JSON node: a dict's items, a list's elements under key ""."""
    if isinstance(node, dict):
        return list(cast(dict[str, Any], node).items())
    if isinstance(node, list):
        return [("", v) for v in cast(list[Any], node)]
    return []


def _collect(schema: Any, key: str) -> list[Any]:
    found: list[Any] = []
    for k, v in _items(schema):
        if k == key:
            found.append(v)
        found.extend(_collect(v, key))
    return found


def _variant(schema: dict[str, Any], kind: str) -> dict[str, Any]:
    variants = schema["properties"]["operations"]["items"]["anyOf"]
    return next(v for v in variants if v["properties"]["op"]["const"] == kind)


def test_schema_targets_are_only_real_qualnames(grounded: tuple[Localised, Any, Path], repo: Path) -> None:
    loc, profile, db = grounded
    schema = json_schema(draft_spec_model(loc, profile))
    real = {s.qualname for s in read_symbols(db)}
    project = Project.load(repo)
    offered = {name for enum in _collect(schema, "enum") for name in enum}
    assert offered and offered <= real
    for name in offered - {s.qualname for s in read_symbols(db) if s.kind == "module"}:
        assert resolve_target(project, name).qualname == name
    assert "$ref" not in json.dumps(schema)
    assert len(_variant(schema, "edit_function")["properties"]["target"]["enum"]) <= 200
    assert "board.helpers.makeSlug" in _variant(schema, "edit_function")["properties"]["target"]["enum"]
    assert "tests.test_helpers.test_slug" not in offered


def test_schema_bounds_every_string_and_list(grounded: tuple[Localised, Any, Path]) -> None:
    loc, profile, _ = grounded
    schema = json_schema(draft_spec_model(loc, profile))

    def walk(node: Any) -> None:
        fields = dict(_items(node)) if isinstance(node, dict) else {}
        if fields.get("type") == "string":
            bounded_pattern = "pattern" in fields and not re.search(r"(?<!\\)[*+]", str(fields["pattern"]))
            assert {"maxLength", "enum", "const"} & fields.keys() or bounded_pattern, node
        if fields.get("type") == "array":
            assert "maxItems" in fields, node
        for _, child in _items(node):
            walk(child)

    walk(schema)


def test_new_name_patterns_follow_the_profiled_convention(grounded: tuple[Localised, Any, Path]) -> None:
    loc, profile, _ = grounded
    assert profile.naming["function"] == "camelCase"
    schema = json_schema(draft_spec_model(loc, profile))
    function_name = re.compile(_variant(schema, "rename_function")["properties"]["new_name"]["pattern"])
    class_name = re.compile(_variant(schema, "rename_class")["properties"]["new_name"]["pattern"])
    # every name the decoder may produce conforms; names of other conventions are impossible
    for name in ("slugOf", "parse", "makeHTTPSlug", "make_slug", "MakeSlug", "MAKE_SLUG", "if", "class"):
        assert bool(function_name.fullmatch(name)) == (name in ("slugOf", "parse", "makeHTTPSlug")), name
    for name in ("TaskBoard", "Board", "taskBoard", "TASKS", "Task_Board", "None"):
        assert bool(class_name.fullmatch(name)) == (name in ("TaskBoard", "Board")), name
        assert not class_name.fullmatch(name) or conforms(name, "PascalCase")


def test_an_answer_naming_a_target_outside_the_candidates_is_rejected(grounded: tuple[Localised, Any, Path]) -> None:
    loc, profile, _ = grounded
    # a backend that ignores the schema: the parser still holds the answer to the candidates
    llm = ScriptedLLM(
        replies=[_answer(operations=[{"op": "edit_function", "target": "board.helpers.nope", "instruction": "x"}])],
        check_schema=False,
    )
    result = normalise_issue(ISSUE, llm=llm, loc=loc, profile=profile, method="draft")
    assert isinstance(result, NeedsClarification)
    assert "'board.helpers.nope' is not one of the repository's candidates" in result.reason
    with pytest.raises(SpecError, match="does not fit the draft schema"):
        parse_draft(
            draft_spec_model(loc, profile),
            _answer(
                operations=[{"op": "rename_function", "target": "board.helpers.makeSlug", "new_name": "make_slug"}]
            ),
        )


def test_draft_schemas_compile_into_a_grammar(grounded: tuple[Localised, Any, Path]) -> None:
    """xgrammar (what the transformers backend constrains decoding with) accepts both schemas."""
    xgr = pytest.importorskip("xgrammar")
    from diffusellm.pipeline.normalise.draft import draft_plan_model

    loc, profile, _ = grounded
    vocab = [chr(i) for i in range(32, 127)] + ["<eos>"]
    compiler = xgr.GrammarCompiler(
        xgr.TokenizerInfo(encoded_vocab=vocab, stop_token_ids=[len(vocab) - 1]), max_threads=1
    )
    for model in (draft_spec_model(loc, profile), draft_plan_model(loc, profile)):
        compiler.compile_json_schema(json.dumps(json_schema(model)), any_whitespace=False, strict_mode=True)


def test_a_model_that_cannot_finish_its_answer_leads_to_a_question(grounded: tuple[Localised, Any, Path]) -> None:
    loc, profile, _ = grounded

    def unfinished(_: Any) -> str:
        raise ModelError("the JSON reply was not finished within max_new_tokens=320")

    result = normalise_issue(ISSUE, llm=ScriptedLLM(replies=[unfinished]), loc=loc, profile=profile, method="draft")
    assert isinstance(result, NeedsClarification)
    assert (
        result.reason == "the model could not write a spec: the JSON reply was not finished within max_new_tokens=320"
    )
    assert "```yaml" in result.question
