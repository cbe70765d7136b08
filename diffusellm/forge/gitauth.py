"""Git over HTTPS for the forge: the token reaches git by a credential helper, for one command."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from diffusellm.forge.base import ForgeError

TOKEN_ENV = "DIFFUSELLM_GIT_TOKEN"
# The helper is part of the command line (never stored); it prints the token that only this one
# git process has in its environment. https://git-scm.com/docs/gitcredentials#_custom_helpers
_HELPER = ('!f() { test "$1" = get || exit 0; echo username=x-access-token; '
           f'printf "password=%s\\n" "${TOKEN_ENV}"; }}; f')
_OPTS = (
    # No hooks, no fsmonitor, no submodules: nothing from the repository runs as code here.
    "-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c", "gc.auto=0",
    "-c", "submodule.recurse=false", "-c", "fetch.recurseSubmodules=false",
    "-c", "protocol.allow=never", "-c", "protocol.https.allow=always",
    "-c", "credential.helper=", "-c", f"credential.helper={_HELPER}",
    "-c", "credential.interactive=never", "-c", "core.askPass=",
    "-c", "commit.gpgSign=false", "-c", "advice.detachedHead=false",
)
_TIMEOUT_S = 600


def _loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str) -> list[str]:
    """Extra `-c` options for `url`, which must be https (plain http only to this machine, for
    tests) and carry no credentials."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or (parts.scheme == "http"
                                                 and not _loopback(parts.hostname)):
        raise ForgeError(f"refusing to use git over {parts.scheme or 'an unknown scheme'}: "
                         f"{parts.scheme}://{parts.hostname}/…",
                         hint="use the repository's https clone URL")
    if parts.username or parts.password:
        raise ForgeError("refusing a clone URL with credentials in it",
                         hint="tokens go through the credential helper, never the URL")
    return ["-c", "protocol.http.allow=always"] if parts.scheme == "http" else []


def _env(token: str | None, home: str) -> dict[str, str]:
    """A scrubbed environment: no user or system git config, no prompts, the token if any."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_TERMINAL_PROMPT": "0",
    }
    if token:
        env[TOKEN_ENV] = token
    return env


def run_git(args: Sequence[str], cwd: Path, *, url: str, token: str | None = None) -> str:
    """One git command with the hardened options; the token lives only in its environment."""
    extra = check_url(url)
    with tempfile.TemporaryDirectory(prefix="diffusellm-githome-") as home:
        try:
            done = subprocess.run(
                ["git", *_OPTS, *extra, *args], cwd=cwd, env=_env(token, home),
                capture_output=True, timeout=_TIMEOUT_S, check=False, stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise ForgeError(f"git {args[0]} took over {_TIMEOUT_S} s", retryable=True) from None
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", "replace").strip()
        if token:
            err = err.replace(token, "***")
        raise ForgeError(f"git {args[0]} failed: {err[-2000:]}", retryable=_transient(err),
                         hint="check that the App is installed on the repository with "
                              "contents: write")
    return done.stdout.decode("utf-8", "replace").strip()


def _transient(err: str) -> bool:
    lowered = err.lower()
    return any(s in lowered for s in ("timed out", "could not resolve", "connection", " 50", "429"))


def write_trusted_config(checkout: Path, url: str) -> None:
    """Replace `.git/config` with one we wrote: whatever else got there is ignored, not obeyed."""
    (checkout / ".git" / "config").write_text(
        "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n"
        "\tlogallrefupdates = true\n"
        f'[remote "origin"]\n\turl = {url}\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n',
        encoding="utf-8",
    )


def _check_branch(name: str) -> str:
    bad = (not name or name.startswith(("-", "/")) or ".." in name or name.endswith((".lock", "/"))
           or any(c.isspace() or c in "~^:?*[\\" for c in name))
    if bad:
        raise ForgeError(f"invalid branch name {name!r}", hint="use a plain branch name")
    return name


def sync_checkout(url: str, dest: Path, *, branch: str, default_branch: str,
                  token: str | None) -> str:
    """Make `dest` a checkout of `branch` as on the remote (cloning or fetching); return its sha."""
    _check_branch(branch)
    _check_branch(default_branch)
    if not (dest / ".git").is_dir():
        dest.mkdir(parents=True, exist_ok=True)
        run_git(["init", "-q", "-b", default_branch, str(dest)], dest, url=url)
    write_trusted_config(dest, url)
    refspecs = {f"+refs/heads/{b}:refs/remotes/origin/{b}" for b in (branch, default_branch)}
    run_git(["fetch", "-q", "--no-tags", "--prune", "origin", *sorted(refspecs)], dest,
            url=url, token=token)
    run_git(["symbolic-ref", "refs/remotes/origin/HEAD", f"refs/remotes/origin/{default_branch}"],
            dest, url=url)
    run_git(["checkout", "-q", "-f", "-B", branch, f"refs/remotes/origin/{branch}"], dest, url=url)
    run_git(["clean", "-q", "-ffdx"], dest, url=url)
    return run_git(["rev-parse", "HEAD"], dest, url=url)


def push_branch(checkout: Path, url: str, *, local_branch: str, remote_branch: str,
                token: str | None) -> None:
    """Push `local_branch` to `remote_branch`, replacing what the bot pushed there before."""
    _check_branch(local_branch)
    _check_branch(remote_branch)
    write_trusted_config(checkout, url)
    run_git(["push", "-q", "--no-verify", "origin",
             f"+refs/heads/{local_branch}:refs/heads/{remote_branch}"],
            checkout, url=url, token=token)
