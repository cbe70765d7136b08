"""The CLI for a person: readable output without --json, whole paths, one-line errors with exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import seed_converted_model
from tests.learn.test_learn_cli import SPEC, run_spec


def _cli(*args: str, env: dict[str, str] | None = None, columns: int = 40) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "COLUMNS": str(columns), **(env or {})}
    if "DIFFUSELLM_STATE_DIR" in full:
        seed_converted_model(Path(full["DIFFUSELLM_STATE_DIR"]))
    return subprocess.run([sys.executable, "-m", "diffusellm", *args], capture_output=True, text=True,
                          env=full, timeout=300)


def test_learn_status_and_sync_speak_to_a_person_and_keep_paths_whole(tmp_path: Path) -> None:
    repo, state, branch = run_spec(tmp_path, SPEC)
    env = {"DIFFUSELLM_STATE_DIR": str(state)}
    status = _cli("learn", "status", env=env)
    assert status.returncode == 0, status.stderr
    assert "runs remembered: 1 pending" in status.stdout and "{" not in status.stdout
    assert "adapters: none trained" in status.stdout
    synced = _cli("learn", "sync", "--repo", str(repo), env=env)
    assert synced.returncode == 0 and synced.stdout.strip() == "no run changed: nothing new was merged or decided"
    as_json = json.loads(_cli("learn", "status", "--json", env=env).stdout)
    assert as_json["outcomes"][0]["branch"] == branch


def test_run_prints_summary_and_patch_paths_unbroken_on_a_narrow_terminal(tmp_path: Path) -> None:
    from tests.conftest import make_repo
    from tests.learn.test_learn_cli import FILES

    repo = make_repo(tmp_path / "a-rather-long-folder-name-for-the-repository" / "repo", FILES)
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    ran = _cli("run", str(spec), "--repo", str(repo), env={"DIFFUSELLM_STATE_DIR": str(tmp_path / "state"),
                                                            "DIFFUSELLM_VALIDATION__PYRIGHT": "false"})
    assert ran.returncode == 0, ran.stderr
    lines = {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in ran.stdout.splitlines()
             if line.startswith(("summary:", "patch:"))}
    assert Path(lines["summary"]).is_file() and Path(lines["patch"]).is_file()


@pytest.mark.parametrize("args, env, said", [
    (["learn", "status"], {"DIFFUSELLM_SERVER": "x"}, "settings from the environment could not be read"),
    (["learn", "sync", "--server", "htp:/nowhere"], {}, "not a server URL: 'htp:/nowhere'"),
    (["worker", "--server", "not a url"], {"DIFFUSELLM_WORKER_TOKEN": "t"}, "not a server URL: 'not a url'"),
])
def test_bad_settings_and_server_urls_exit_2_with_one_line(
    tmp_path: Path, args: list[str], env: dict[str, str], said: str,
) -> None:
    done = _cli(*args, env={"DIFFUSELLM_STATE_DIR": str(tmp_path / "state"), **env}, columns=200)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and done.stderr.splitlines()[0].startswith(f"error: {said}")
    assert len(done.stderr.splitlines()) == 2 and done.stderr.splitlines()[1].startswith("hint: ")


def test_text_in_square_brackets_is_printed_as_it_is(capsys: pytest.CaptureFixture[str]) -> None:
    """Paths and names are data, not rich markup: `learn train` once crashed printing `[/tmp/...]`."""
    from diffusellm.cli.common import out_console
    from diffusellm.cli.learn_view import print_status, print_train

    adapter = "/tmp/adapters/[red]/x"
    print_train(out_console(), {"adapter": adapter, "examples": 2, "steps": 4, "first_loss": 2.5,
                                "last_loss": 2.1, "seconds": 3.0, "use_it": f"--set llm.adapters=[{adapter}]"})
    print_status(out_console(), {"counts": {"pending": 1}, "adapters": [], "outcomes": [
        {"job_id": "run-1", "verdict": "pending", "status": "succeeded", "branch": "fix/[bold]-x",
         "operations": ["rename [a]"]}]})
    out = capsys.readouterr().out
    assert f"adapter {adapter}" in out and f"use it: --set llm.adapters=[{adapter}]" in out
    assert "runs remembered: 1 pending" in out and "fix/[bold]-x" in out and "rename [a]" in out
    assert "\\[" not in out, "no escape characters leak into what a person reads"
