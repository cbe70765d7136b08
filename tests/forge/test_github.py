"""The GitHub forge against the GitHub double: App auth, scoped tokens, rate limits, the calls."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from diffusellm.errors import ConfigError
from diffusellm.forge.base import CheckRunOutput, ForgeError, PullRequest, job_marker
from diffusellm.forge.github import GitHubApp, GitHubForge
from diffusellm.forge.github_auth import TRIAGE_PERMISSIONS, WORKER_PERMISSIONS
from diffusellm.forge.github_settings import (
    PUBLIC_API_URL,
    GitHubSettings,
    api_url,
    secrets_from_env,
)
from tests.conftest import make_repo
from tests.fakes.github_double import GitHubDouble, app_for, fast_settings, serve
from tests.fakes.github_resources import PullRec, RepoRec

REPO = "Codertocat/Hello-World"
SECONDARY = {"message": "You have exceeded a secondary rate limit. Please wait a few minutes.",
             "documentation_url": "https://docs.github.com/rest/overview/rate-limits"}


@pytest.fixture
def double(tmp_path: Path) -> Iterator[GitHubDouble]:
    with serve(tmp_path / "github") as running:
        yield running
        assert running.violations == [], "requests or responses off GitHub's OpenAPI description"


@pytest.fixture
def repo(double: GitHubDouble, tmp_path: Path) -> RepoRec:
    src = make_repo(tmp_path / "src", {"pkg/__init__.py": "", "README.md": "hello\n",
                                       ".github/diffusellm.yml": "draft: false\n"})
    repo = double.add_repo("Codertocat", "Hello-World", src)
    double.set_role(repo, "alice", "write")
    return repo


@pytest.fixture
def forge(double: GitHubDouble, repo: RepoRec) -> GitHubForge:
    return app_for(double).forge(REPO, double.installation_id)


def _ops(double: GitHubDouble, operation_id: str) -> int:
    return sum(1 for entry in double.log if entry.operation_id == operation_id)


def test_installation_token_is_scoped_to_the_repository_and_permissions(
    double: GitHubDouble, forge: GitHubForge,
) -> None:
    forge.get_issue(double.add_issue(double.repos[REPO], "t", "b", "alice").number)
    (minted,) = [e for e in double.log if e.operation_id ==
                 "apps/create-installation-access-token"]
    assert minted.body == {"repositories": ["Hello-World"], "permissions": dict(WORKER_PERMISSIONS)}
    (token,) = double.tokens.values()
    assert token.repos == {REPO} and token.permissions == dict(WORKER_PERMISSIONS)


def test_triage_tokens_cannot_push_or_write_checks(double: GitHubDouble, repo: RepoRec) -> None:
    triage = app_for(double, permissions=TRIAGE_PERMISSIONS).forge(REPO, double.installation_id)
    sha = double.branch_sha(repo, "main")
    assert sha is not None
    with pytest.raises(ForgeError, match="403"):
        triage.upsert_check_run(name="x", head_sha=sha, conclusion="success",
                                output=CheckRunOutput("t", "s"), external_id="k")


def test_token_is_cached_then_minted_again_before_expiry(double: GitHubDouble,
                                                          repo: RepoRec) -> None:
    clock = [time.time()]
    app = app_for(double)
    tokens = app._tokens  # pyright: ignore[reportPrivateUsage]
    tokens._clock = lambda: clock[0]  # pyright: ignore[reportPrivateUsage]
    first = tokens.token(double.installation_id, REPO)
    assert tokens.token(double.installation_id, REPO) == first
    assert _ops(double, "apps/create-installation-access-token") == 1
    clock[0] += 3600 - 300 + 1  # inside the refresh margin of the one-hour token
    second = tokens.token(double.installation_id, REPO)
    assert second != first and _ops(double, "apps/create-installation-access-token") == 2


def test_installation_is_looked_up_when_the_event_did_not_name_it(double: GitHubDouble,
                                                                  repo: RepoRec) -> None:
    forge = app_for(double).forge(REPO, None)
    assert forge.repository().default_branch == "main"
    assert _ops(double, "apps/get-repo-installation") == 1


def test_bot_login_comes_from_get_app(double: GitHubDouble) -> None:
    assert app_for(double).bot_login == "diffusellm-test[bot]"
    assert app_for(double, fast_settings(double, app_slug="named")).bot_login == "named[bot]"


def test_wrong_app_key_is_refused_with_a_hint(double: GitHubDouble, repo: RepoRec,
                                              tmp_path: Path) -> None:
    other = GitHubDouble(tmp_path / "other")  # a different RSA key, never started
    app = GitHubApp(app_id=str(double.app_id), private_key=other.private_key_pem,
                    settings=fast_settings(double, app_slug="x"), base_url=double.url)
    with pytest.raises(ForgeError, match="installation token") as caught:
        app.forge(REPO, double.installation_id).get_issue(1)
    assert "installed" in caught.value.hint


def test_issue_comments_and_reactions(double: GitHubDouble, repo: RepoRec,
                                      forge: GitHubForge) -> None:
    issue = double.add_issue(repo, "Rename f", "body text", "alice")
    for i in range(105):  # more than one page of 100
        double.add_comment(repo, issue.number, "alice", f"comment {i}")
    comments = forge.list_comments(issue.number)
    assert len(comments) == 105 and comments[-1].body == "comment 104"
    posted = forge.post_comment(issue.number, "status")
    edited = forge.edit_comment(posted.id, "status, edited")
    assert edited.body == "status, edited" and edited.author == forge.bot_login
    forge.add_reaction(issue.number, "eyes")
    forge.add_reaction(issue.number, "eyes")
    forge.add_comment_reaction(comments[0].id, "+1")
    assert len(repo.reactions) == 2
    fetched = forge.get_issue(issue.number)
    assert (fetched.title, fetched.body, fetched.author) == ("Rename f", "body text", "alice")


def test_permissions_keep_maintain_and_triage_apart(double: GitHubDouble, repo: RepoRec,
                                                    forge: GitHubForge) -> None:
    for login, role in (("m", "maintain"), ("t", "triage"), ("r", "read"), ("a", "admin")):
        double.set_role(repo, login, role)
    found = {login: forge.get_permission(login) for login in ("m", "t", "r", "a", "alice")}
    assert {k: v.can_write for k, v in found.items()} == {
        "m": True, "t": False, "r": False, "a": True, "alice": True}
    assert found["m"].label == "maintain" and found["t"].label == "triage"
    assert not forge.get_permission("no-such-user").can_write


def test_files_from_the_default_branch(forge: GitHubForge) -> None:
    assert forge.get_default_branch_file(".github/diffusellm.yml") == "draft: false\n"
    assert forge.get_default_branch_file(".github/missing.yml") is None


def _push_branch(double: GitHubDouble, repo: RepoRec, forge: GitHubForge, tmp_path: Path,
                 name: str) -> str:
    checkout = tmp_path / "checkout"
    forge.sync_checkout(checkout)
    (checkout / "new.txt").write_text("new\n")
    make = ["-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "-C", str(checkout), "checkout", "-q", "-b", "work"], check=True)
    subprocess.run(["git", "-C", str(checkout), "add", "new.txt"], check=True)
    subprocess.run(["git", "-C", str(checkout), *make, "commit", "-qm", "new"], check=True)
    forge.push_branch(checkout, "work", name)
    sha = double.branch_sha(repo, name)
    assert sha is not None
    return sha


def test_pull_request_found_by_marker_only_when_the_bot_wrote_it(
    double: GitHubDouble, repo: RepoRec, forge: GitHubForge, tmp_path: Path,
) -> None:
    _push_branch(double, repo, forge, tmp_path, "diffusellm/issue-1")
    marker = job_marker("issue-1")
    fake = double.add_issue(repo, "Imposter", f"looks like ours {marker}", "mallory")
    fake.pull = PullRec(head="diffusellm/issue-1", base="main", draft=False)
    fake.state = "closed"
    assert forge.find_pull_request(marker, head_branch="diffusellm/issue-1") is None
    pr = forge.create_pull_request(title="T", body=f"B\n{marker}", head="diffusellm/issue-1",
                                   base="main", draft=True)
    assert pr.draft and pr.head_branch == "diffusellm/issue-1"
    found = forge.find_pull_request(marker, head_branch="diffusellm/issue-1")
    assert isinstance(found, PullRequest) and found.number == pr.number
    assert forge.find_pull_request(marker) == found
    updated = forge.update_pull_request(pr.number, title="T2", body=f"B2\n{marker}")
    assert (updated.title, forge.get_pull_request(pr.number).body) == ("T2", f"B2\n{marker}")


def test_check_run_is_created_once_then_updated(double: GitHubDouble, repo: RepoRec,
                                                forge: GitHubForge, tmp_path: Path) -> None:
    sha = _push_branch(double, repo, forge, tmp_path, "diffusellm/issue-1")
    first = forge.upsert_check_run(name="diffusellm", head_sha=sha, conclusion="failure",
                                   output=CheckRunOutput("t", "one"), external_id="issue-1")
    again = forge.upsert_check_run(name="diffusellm", head_sha=sha, conclusion="success",
                                   output=CheckRunOutput("t", "two"), external_id="issue-1")
    assert first == again and len(repo.check_runs) == 1
    (run,) = repo.check_runs.values()
    assert (run.conclusion, run.output["summary"], run.status) == ("success", "two", "completed")


@pytest.mark.parametrize(("status", "headers", "body"), [
    (403, {"Retry-After": "1"}, SECONDARY),
    (403, {}, SECONDARY),
    (429, {"Retry-After": "1"}, SECONDARY),
    (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "RESET"},
     {"message": "API rate limit exceeded for installation ID 77.",
      "documentation_url": "https://docs.github.com/rest/overview/rate-limits"}),
])
def test_rate_limits_are_waited_out_then_retried(
    double: GitHubDouble, repo: RepoRec, status: int, headers: dict[str, str],
    body: dict[str, str],
) -> None:
    issue = double.add_issue(repo, "t", "b", "alice")
    forge = app_for(double).forge(REPO, double.installation_id)
    forge.repository()  # mint the token first so the fault hits the issue request
    fixed = {k: (str(int(time.time()) + 1) if v == "RESET" else v) for k, v in headers.items()}
    double.inject(status, body, headers=fixed, operation_id="issues/get")
    assert forge.get_issue(issue.number).title == "t"
    answers = [e.status for e in double.log if e.operation_id == "issues/get"]
    assert answers == [status, 200]


def test_a_wait_longer_than_allowed_gives_a_retryable_error(double: GitHubDouble,
                                                            repo: RepoRec) -> None:
    forge = app_for(double, fast_settings(double, max_rate_limit_wait_s=0.5,
                                          secondary_rate_wait_s=5)).forge(REPO, 77)
    forge.repository()
    double.inject(403, SECONDARY, operation_id="issues/get")
    with pytest.raises(ForgeError) as caught:
        forge.get_issue(1)
    assert caught.value.retryable


def test_not_found_is_a_permanent_forge_error(forge: GitHubForge) -> None:
    with pytest.raises(ForgeError, match="404") as caught:
        forge.get_issue(999)
    assert not caught.value.retryable


# -- settings and secrets -----------------------------------------------------------------


def test_secrets_from_env_reads_probot_names(tmp_path: Path, double: GitHubDouble) -> None:
    pem = double.private_key_pem
    inline = secrets_from_env({"APP_ID": "123", "PRIVATE_KEY": pem.replace("\n", "\\n"),
                               "WEBHOOK_SECRET": "s"})
    assert inline.require_app() == ("123", pem) and inline.webhook_secret == "s"
    key_file = tmp_path / "app.pem"
    key_file.write_text(pem)
    from_file = secrets_from_env({"APP_ID": "123", "PRIVATE_KEY_PATH": str(key_file)})
    assert from_file.private_key == pem
    assert "PRIVATE_KEY" not in repr(from_file) and pem not in repr(from_file)


@pytest.mark.parametrize(("env", "message"), [
    ({"APP_ID": "abc"}, "numeric"),
    ({"PRIVATE_KEY": "x", "PRIVATE_KEY_PATH": "/x"}, "both"),
    ({"PRIVATE_KEY": "not a key"}, "not a PEM"),
    ({"PRIVATE_KEY_PATH": "/no/such/key.pem"}, "cannot read"),
])
def test_bad_secrets_are_explained(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        secrets_from_env(env)


def test_missing_app_credentials_are_explained() -> None:
    with pytest.raises(ConfigError, match="APP_ID"):
        secrets_from_env({}).require_app()
    with pytest.raises(ConfigError, match="private key") as caught:
        secrets_from_env({"APP_ID": "1"}).require_app()
    assert "PRIVATE_KEY_PATH" in caught.value.hint


def test_ghe_host_selects_the_enterprise_api_root() -> None:
    settings = GitHubSettings()
    assert api_url(settings, secrets_from_env({})) == PUBLIC_API_URL
    ghe = secrets_from_env({"GHE_HOST": "github.example.com"})
    assert api_url(settings, ghe) == "https://github.example.com/api/v3"
    assert api_url(settings, secrets_from_env({"GHE_HOST": "https://ghe.local/"})) == \
        "https://ghe.local/api/v3"


def test_settings_refuse_unknown_keys() -> None:
    with pytest.raises(ValueError, match="extra"):
        GitHubSettings.model_validate({"trigger_lable": "x"})
