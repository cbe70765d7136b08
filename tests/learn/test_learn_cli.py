"""`diffusellm learn` as a user runs it: a real `diffusellm run` is remembered, merging its branch
accepts it, and bad requests say what to do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import git, make_repo, seed_converted_model

FILES = {
    "pkg/__init__.py": "",
    "pkg/text.py": '"""Text."""\n\n\ndef shout(text: str) -> str:\n    """Loud."""\n    return text.upper()\n',
    "tests/test_text.py": 'from pkg.text import shout\n\n\ndef test_shout() -> None:\n    assert shout("a") == "A"\n',
}
SPEC = "title: Rename shout\noperations:\n  - op: rename_symbol\n    target: pkg.text.shout\n    new_name: yell\n"


def cli(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    seed_converted_model(state)
    env = {**os.environ, "DIFFUSELLM_STATE_DIR": str(state), "DIFFUSELLM_VALIDATION__PYRIGHT": "false"}
    return subprocess.run(
        [sys.executable, "-m", "diffusellm", *args], capture_output=True, text=True, env=env, timeout=300
    )


def run_spec(tmp_path: Path, spec_text: str) -> tuple[Path, Path, str]:
    """A fresh repository with `spec_text` run on it through the CLI: (repo, state, branch)."""
    repo = make_repo(tmp_path / "repo", FILES)
    state = tmp_path / "state"
    spec = tmp_path / "spec.yaml"
    spec.write_text(spec_text, encoding="utf-8")
    ran = cli(state, "run", str(spec), "--repo", str(repo), "--json")
    assert ran.returncode == 0, ran.stderr
    return repo, state, json.loads(ran.stdout)["branch"]


def test_a_run_is_remembered_and_merging_its_branch_accepts_it(tmp_path: Path) -> None:
    repo, state, branch = run_spec(tmp_path, SPEC)

    before = json.loads(cli(state, "learn", "status", "--json").stdout)
    assert before["counts"] == {"pending": 1}
    assert before["outcomes"][0]["branch"] == branch
    assert before["outcomes"][0]["operations"] == ["rename_symbol pkg.text.shout"]

    synced = cli(state, "learn", "sync", "--repo", str(repo), "--json")
    assert synced.returncode == 0 and json.loads(synced.stdout) == []
    git(repo, "merge", "-q", "--ff-only", branch)
    synced = json.loads(cli(state, "learn", "sync", "--repo", str(repo), "--json").stdout)
    assert [(o["branch"], o["verdict"], o["verdict_source"]) for o in synced] == [
        (branch, "accepted", "merged into main")
    ]

    # a rename has no model-written code: nothing to learn from, and the message says what would be
    exported = cli(state, "learn", "export", str(tmp_path / "train.jsonl"), "--repo", str(repo))
    assert exported.returncode == 2
    assert "no accepted run" in exported.stderr and "diffusellm learn sync" in exported.stderr
    assert not (tmp_path / "train.jsonl").exists()


EDIT_SPEC = """title: Strip before shouting
operations:
  - op: edit_function
    target: pkg.text.shout
    body: |
      return text.strip().upper()
"""


@pytest.mark.slow
def test_the_local_loop_from_a_merged_run_to_a_trained_adapter(tmp_path: Path) -> None:
    """run → merge → learn sync → export → train (2 steps on the embedded model) → status lists it."""
    repo, state, branch = run_spec(tmp_path, EDIT_SPEC)
    git(repo, "merge", "-q", "--no-ff", "-m", "Merge", branch)
    assert cli(state, "learn", "sync", "--repo", str(repo)).returncode == 0

    data = tmp_path / "train.jsonl"
    exported = json.loads(cli(state, "learn", "export", str(data), "--repo", str(repo), "--json").stdout)
    assert exported["examples"] == 1
    turns = json.loads(data.read_text(encoding="utf-8"))["messages"]
    assert turns[-1] == {"role": "assistant", "content": "    return text.strip().upper()\n"}

    trained = cli(state, "learn", "train", "--repo", str(repo), "--json", "--set", "learn.lora.steps=2")
    assert trained.returncode == 0, trained.stderr
    result = json.loads(trained.stdout)
    adapter = Path(result["adapter"])
    assert (adapter / "adapter_config.json").is_file() and result["steps"] == 2 and result["examples"] == 1
    assert adapter.parent == state / "learn" / "adapters"
    listed = json.loads(cli(state, "learn", "status", "--json").stdout)["adapters"]
    assert [a["adapter"] for a in listed] == [str(adapter)] and listed[0]["base_model"] == "embedded:smollm2-135m"


def test_training_without_data_or_on_an_endpoint_model_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    nothing = cli(state, "learn", "train")
    assert nothing.returncode == 2 and "--data" in nothing.stderr
    endpoint = cli(state, "learn", "train", "--set", "llm={type: openai, base_url: 'http://127.0.0.1:9', model: m}")
    assert endpoint.returncode == 2 and "llm.type: transformers" in endpoint.stderr
    core = cli(state, "learn", "train-core")
    assert core.returncode == 2 and "nothing to learn which core works better" in core.stderr


def test_verdicts_on_unknown_runs_and_branches_say_what_to_do(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", FILES)
    state = tmp_path / "state"
    unknown = cli(state, "learn", "accept", "job-nope", "--json")
    assert unknown.returncode == 2
    error = json.loads(unknown.stdout)
    assert "job-nope" in error["error"] and "learn status" in error["hint"]
    missing = cli(state, "learn", "sync", "--repo", str(repo), "--into", "no-such-branch")
    assert missing.returncode != 0 and "no-such-branch" in missing.stderr
