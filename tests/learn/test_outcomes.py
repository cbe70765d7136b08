"""The outcome memory: runs are recorded, a merged branch makes its run accepted, people can accept or
reject by hand, and accepted generated functions become fill-prompt training examples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from diffusellm.errors import InputError
from diffusellm.learn.dataset import ChatExample, examples_for, functions_in, read_jsonl, write_jsonl
from diffusellm.learn.outcomes import OutcomeStore
from diffusellm.learn.verdicts import sync_local
from diffusellm.pipeline.job import RunReport
from diffusellm.pipeline.validate.checks import ValidationReport
from tests.conftest import git, make_repo

TEXT = '''"""Text helpers."""


def shout(text: str) -> str:
    """Upper-case the text."""
    return text.upper()
'''
TESTS = 'from pkg.text import shout\n\n\ndef test_shout() -> None:\n    assert shout("a") == "A"\n'
EDITED = TEXT.replace("return text.upper()", "return text.strip().upper()")
NEW_TEST = TESTS + '\n\ndef test_shout_strips() -> None:\n    assert shout(" a ") == "A"\n'


def _branch(repo: Path, name: str) -> str:
    """A bot-like branch editing shout and adding a test; its commit id."""
    git(repo, "checkout", "-q", "-b", name)
    (repo / "pkg" / "text.py").write_text(EDITED, encoding="utf-8")
    (repo / "tests" / "test_text.py").write_text(NEW_TEST, encoding="utf-8")
    git(repo, "commit", "-qam", "Strip before shouting")
    commit = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "checkout", "-q", "main")
    return commit


def _report(repo: Path, job: str, branch: str | None, commit: str | None, **extra: Any) -> RunReport:
    ops = [
        {"op": "edit_function", "target": "pkg.text.shout", "instruction": "strip spaces first"},
        {"op": "add_test", "target": "pkg.text.shout", "path": "tests/test_text.py", "instruction": "spaces"},
    ]
    data: dict[str, Any] = {
        "job_id": job,
        "repo": str(repo.resolve()),
        "base_commit": git(repo, "rev-parse", "main").strip(),
        "status": "succeeded" if branch else "generation_failed",
        "branch": branch,
        "commit": commit,
        "changed_files": ["pkg/text.py", "tests/test_text.py"] if branch else [],
        "changelog": None,
        "validation": ValidationReport(),
        "spec": {"title": "Strip before shouting", "operations": ops},
        "summary_path": "",
        "patch_path": "",
    }
    return RunReport.model_validate(data | extra)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"pkg/__init__.py": "", "pkg/text.py": TEXT, "tests/test_text.py": TESTS})


def test_a_run_is_recorded_and_waits_for_a_verdict_only_when_it_left_a_branch(repo: Path, tmp_path: Path) -> None:
    store = OutcomeStore.in_state(tmp_path / "state")
    commit = _branch(repo, "diffusellm/strip")
    kept = store.record(_report(repo, "job-1", "diffusellm/strip", commit))
    failed = store.record(_report(repo, "job-2", None, None))
    assert (kept.verdict, failed.verdict) == ("pending", "none")
    assert [op["op"] for op in kept.generated()] == ["edit_function", "add_test"]
    assert store.get("diffusellm/strip").job_id == "job-1"
    assert store.counts() == {"pending": 1, "none": 1}
    with pytest.raises(InputError, match="left no branch"):
        store.set_verdict("job-2", "accepted", "manual")
    with pytest.raises(InputError, match="no recorded run has job id or branch 'job-9'") as info:
        store.get("job-9")
    assert "diffusellm learn status" in info.value.hint


def test_merging_the_branch_accepts_the_run_and_nothing_else(repo: Path, tmp_path: Path) -> None:
    store = OutcomeStore.in_state(tmp_path / "state")
    merged = _branch(repo, "diffusellm/strip")
    store.record(_report(repo, "job-1", "diffusellm/strip", merged))
    git(repo, "checkout", "-q", "-b", "diffusellm/other")
    (repo / "pkg" / "more.py").write_text("X = 1\n", encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "More")
    other = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "checkout", "-q", "main")
    store.record(_report(repo, "job-2", "diffusellm/other", other))
    assert sync_local(store, repo) == []  # nothing merged yet
    git(repo, "merge", "-q", "--no-ff", "-m", "Merge strip", "diffusellm/strip")
    accepted = sync_local(store, repo)
    assert [(o.job_id, o.verdict, o.verdict_source) for o in accepted] == [("job-1", "accepted", "merged into main")]
    assert store.get("job-2").verdict == "pending"
    assert store.set_verdict("job-2", "rejected", "manual").verdict == "rejected"
    assert sync_local(store, repo) == []


def test_accepted_generated_functions_become_fill_prompt_examples(repo: Path, tmp_path: Path) -> None:
    store = OutcomeStore.in_state(tmp_path / "state")
    commit = _branch(repo, "diffusellm/strip")
    outcome = store.record(_report(repo, "job-1", "diffusellm/strip", commit))
    assert examples_for(outcome, repo) == []  # not accepted yet
    accepted = store.set_verdict("job-1", "accepted", "manual")
    examples = examples_for(accepted, repo)
    assert [e.reply for e in examples] == [
        "    return text.strip().upper()\n",
        '    assert shout(" a ") == "A"\n',
    ]
    prompt = "\n".join(m["content"] for m in examples[0].messages)
    assert 'def shout(text: str) -> str:\n    """Upper-case the text."""\n<FILL>' in prompt
    assert "Task: strip spaces first" in prompt
    data = tmp_path / "train.jsonl"
    assert write_jsonl(examples, data) == 2
    assert read_jsonl(data) == examples
    assert json.loads(data.read_text().splitlines()[0])["messages"][-1]["role"] == "assistant"


def test_functions_are_split_into_header_and_body() -> None:
    source = 'class A:\n    @staticmethod\n    def f() -> int:\n        """Doc."""\n        # why\n        return 1\n\n    def g(self) -> None:\n        """Only a doc."""\n'
    found = functions_in(source)
    assert found["A.f"].header == '    @staticmethod\n    def f() -> int:\n        """Doc."""\n'
    assert found["A.f"].body == "        # why\n        return 1\n"
    assert found["A.g"].body == ""
    assert functions_in("def (") == {}


def test_bad_training_data_is_refused_with_the_line(tmp_path: Path) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="bad.jsonl:1: not a chat example") as info:
        read_jsonl(data)
    assert '"messages"' in info.value.hint
    good = [ChatExample([{"role": "user", "content": "hi"}], "hello")]
    write_jsonl(good, data)
    assert read_jsonl(data) == good
