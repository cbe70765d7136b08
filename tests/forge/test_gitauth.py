"""Git with a token: never in the URL, .git/config, sandbox or logs; no hooks, no repo config."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from diffusellm.forge import gitauth
from diffusellm.forge.base import ForgeError
from diffusellm.pipeline.validate.sandbox import BubblewrapSandbox
from tests.conftest import make_repo
from tests.fakes.github_double import GitHubDouble, serve
from tests.fakes.github_resources import RepoRec


@pytest.fixture
def double(tmp_path: Path) -> Iterator[GitHubDouble]:
    with serve(tmp_path / "github") as running:
        yield running


@pytest.fixture
def repo(double: GitHubDouble, tmp_path: Path) -> RepoRec:
    src = make_repo(tmp_path / "src", {"pkg/__init__.py": "", "README.md": "hi\n"})
    return double.add_repo("Codertocat", "Hello-World", src)


def _token(double: GitHubDouble, contents: str = "write") -> str:
    return str(double.mint_token(["Hello-World"], {"contents": contents})["token"])


def _url(double: GitHubDouble) -> str:
    return f"{double.url}/Codertocat/Hello-World.git"


def _commit(checkout: Path, name: str) -> None:
    (checkout / name).write_text(name)
    ident = ["-c", "user.name=t", "-c", "user.email=t@t", "-c", "core.hooksPath=/dev/null"]
    subprocess.run(["git", "-C", str(checkout), "add", name], check=True)
    subprocess.run(["git", "-C", str(checkout), *ident, "commit", "-qm", name], check=True)


def _all_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


def test_clone_and_push_leave_no_token_behind(double: GitHubDouble, repo: RepoRec,
                                              tmp_path: Path) -> None:
    token = _token(double)
    checkout = tmp_path / "checkout"
    sha = gitauth.sync_checkout(_url(double), checkout, branch="main", default_branch="main",
                                token=token)
    assert sha == double.branch_sha(repo, "main")
    _commit(checkout, "change.txt")
    gitauth.push_branch(checkout, _url(double), local_branch="main",
                        remote_branch="diffusellm/issue-1", token=token)
    assert double.branch_sha(repo, "diffusellm/issue-1") is not None
    config = (checkout / ".git" / "config").read_text()
    assert token not in config and "x-access-token" not in config and "@" not in config
    assert token.encode() not in _all_bytes(checkout / ".git")
    assert token not in os.environ.values()


def test_the_sandbox_sees_no_token(double: GitHubDouble, repo: RepoRec, tmp_path: Path) -> None:
    token = _token(double)
    checkout = tmp_path / "checkout"
    gitauth.sync_checkout(_url(double), checkout, branch="main", default_branch="main",
                          token=token)
    result = BubblewrapSandbox().run(
        ["sh", "-c", "env; cat .git/config; git config --list 2>&1 || true"], workdir=checkout)
    assert result.returncode == 0, result.stderr
    assert "PATH=" in result.stdout and "Hello-World.git" in result.stdout
    assert token not in result.stdout + result.stderr
    assert gitauth.TOKEN_ENV not in result.stdout


def test_without_a_token_git_is_refused(double: GitHubDouble, repo: RepoRec,
                                        tmp_path: Path) -> None:
    with pytest.raises(ForgeError, match="git fetch failed"):
        gitauth.sync_checkout(_url(double), tmp_path / "c", branch="main",
                              default_branch="main", token=None)


def test_a_read_only_token_cannot_push_and_is_not_echoed(double: GitHubDouble, repo: RepoRec,
                                                         tmp_path: Path) -> None:
    token = _token(double, contents="read")
    checkout = tmp_path / "checkout"
    gitauth.sync_checkout(_url(double), checkout, branch="main", default_branch="main",
                          token=token)
    _commit(checkout, "x.txt")
    with pytest.raises(ForgeError) as caught:
        gitauth.push_branch(checkout, _url(double), local_branch="main",
                            remote_branch="diffusellm/x", token=token)
    assert token not in str(caught.value)
    assert double.branch_sha(repo, "diffusellm/x") is None


def test_hooks_never_run(double: GitHubDouble, repo: RepoRec, tmp_path: Path) -> None:
    token = _token(double)
    checkout = tmp_path / "checkout"
    gitauth.sync_checkout(_url(double), checkout, branch="main", default_branch="main",
                          token=token)
    ran = tmp_path / "hook-ran"
    for hook in ("post-checkout", "pre-push", "reference-transaction", "post-merge",
                 "pre-auto-gc"):
        path = checkout / ".git" / "hooks" / hook
        path.write_text(f"#!/bin/sh\necho {hook} >> {ran}\n")
        path.chmod(0o755)
    _commit(checkout, "y.txt")
    gitauth.sync_checkout(_url(double), checkout, branch="main", default_branch="main",
                          token=token)
    _commit(checkout, "z.txt")
    gitauth.push_branch(checkout, _url(double), local_branch="main",
                        remote_branch="diffusellm/hooks", token=token)
    assert not ran.exists()


def test_untrusted_repository_config_is_replaced(double: GitHubDouble, repo: RepoRec,
                                                 tmp_path: Path) -> None:
    token = _token(double)
    checkout = tmp_path / "checkout"
    gitauth.sync_checkout(_url(double), checkout, branch="main", default_branch="main",
                          token=token)
    _commit(checkout, "w.txt")
    leak = tmp_path / "leaked-credentials"
    evil = tmp_path / "evil.git"
    subprocess.run(["git", "init", "-q", "--bare", str(evil)], check=True)
    with (checkout / ".git" / "config").open("a") as config:
        config.write(f'[credential]\n\thelper = store --file={leak}\n'
                     f'[url "{evil}"]\n\tinsteadOf = {double.url}/\n'
                     f'[core]\n\thooksPath = {tmp_path}\n\tfsmonitor = touch {leak}\n')
    gitauth.push_branch(checkout, _url(double), local_branch="main",
                        remote_branch="diffusellm/config", token=token)
    assert double.branch_sha(repo, "diffusellm/config") is not None
    assert not leak.exists()
    assert str(evil) not in (checkout / ".git" / "config").read_text()


@pytest.mark.parametrize(("url", "message"), [
    ("https://x-access-token:secret@github.com/o/r.git", "credentials"),
    ("http://github.com/o/r.git", "git over http"),
    ("git://github.com/o/r.git", "git over git"),
    ("ssh://git@github.com/o/r.git", "git over ssh"),
    ("/some/local/path", "an unknown scheme"),
])
def test_unsafe_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(ForgeError, match=message):
        gitauth.check_url(url)


def test_https_and_loopback_http_are_allowed() -> None:
    assert gitauth.check_url("https://github.com/o/r.git") == []
    loopback = gitauth.check_url("http://127.0.0.1:8080/o/r.git")
    assert loopback == ["-c", "protocol.http.allow=always"]
    assert gitauth.check_url("http://localhost/o/r.git") != []


@pytest.mark.parametrize("branch", ["-f", "a..b", "x y", "main.lock", "a:b", ""])
def test_bad_branch_names_are_refused(branch: str, tmp_path: Path) -> None:
    with pytest.raises(ForgeError, match="invalid branch"):
        gitauth.push_branch(tmp_path, "https://github.com/o/r.git", local_branch="main",
                            remote_branch=branch, token=None)
