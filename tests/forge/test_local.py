"""The local forge: real git against a plain repository, everything else recorded for the result."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from diffusellm.forge.base import CheckRunOutput, ForgeError, job_marker
from diffusellm.forge.freeze import freeze
from diffusellm.forge.local import LocalForge
from tests.conftest import git, make_repo


@pytest.fixture
def user_repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"pkg/__init__.py": "", ".github/diffusellm.yml": "x: 1\n"})


def test_checkout_and_push_leave_the_users_checkout_alone(user_repo: Path, tmp_path: Path) -> None:
    forge = LocalForge(user_repo)
    head = git(user_repo, "rev-parse", "HEAD").strip()
    checkout = tmp_path / "checkout"
    assert forge.sync_checkout(checkout) == head
    (checkout / "new.py").write_text("X = 1\n")
    subprocess.run(["git", "-C", str(checkout), "add", "new.py"], check=True)
    subprocess.run(["git", "-C", str(checkout), "-c", "user.name=t", "-c", "user.email=t@t",
                    "commit", "-qm", "new"], check=True)
    forge.push_branch(checkout, "main", "diffusellm/issue-1")
    assert "new.py" in git(user_repo, "show", "--name-only", "diffusellm/issue-1")
    assert git(user_repo, "rev-parse", "HEAD").strip() == head
    assert git(user_repo, "status", "--porcelain") == ""
    with pytest.raises(ForgeError, match="checked-out branch"):
        forge.push_branch(checkout, "main", "main")


def test_comments_prs_and_checks_are_recorded(user_repo: Path) -> None:
    request = freeze(repo_full_name=f"local:{user_repo}", title="T", body="B", sender="me")
    forge = LocalForge(user_repo, request=request)
    assert forge.get_issue(0).title == "T" and forge.get_permission("anyone").can_write
    comment = forge.post_comment(0, "hello")
    forge.edit_comment(comment.id, "hello again")
    marker = job_marker("local-0")
    pr = forge.create_pull_request(title="T", body=f"x {marker}", head="b", base="main",
                                   draft=True)
    assert forge.find_pull_request(marker, head_branch="b") == pr
    forge.update_pull_request(pr.number, title="T2", body=f"y {marker}")
    forge.upsert_check_run(name="c", head_sha="abc", conclusion="success",
                           output=CheckRunOutput("t", "s"), external_id="k")
    forge.upsert_check_run(name="c", head_sha="abc", conclusion="failure",
                           output=CheckRunOutput("t", "s2"), external_id="k")
    result = forge.result()
    assert [c["body"] for c in result["comments"]] == ["hello again"]
    assert result["pull_requests"][0]["title"] == "T2"
    assert [r["conclusion"] for r in result["check_runs"]] == ["failure"]
    assert forge.get_default_branch_file(".github/diffusellm.yml") == "x: 1\n"
    assert forge.get_default_branch_file("missing.yml") is None
