"""Canary search for the secrets test: a probe run inside the sandbox and finders outside it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from tests.e2e.support_deploy import FILES, Deployment, json_text

PROBE_PATH = "tests/test_sandbox_secrets.py"
PROBE = '''"""Looks, from inside the sandbox, for anything of the worker's secrets."""

import os
import stat
import sys

from shapes.area import square_area

# Split so that this file does not find itself.
MARKERS = ("dllm" + "canary", "PRIVATE" + " KEY", "x-access" + "-token")
SKIP = ("/proc", "/sys", "/dev", "/usr", sys.prefix, sys.base_prefix, sys.exec_prefix)
PROC = ("/proc/self/environ", "/proc/self/cmdline", "/proc/1/environ", "/proc/1/cmdline")


def _skipped(path):
    return any(path == top or path.startswith(top.rstrip("/") + "/") for top in SKIP)


def _readable_files():
    for root, dirs, files in os.walk("/"):
        dirs[:] = [d for d in dirs if not _skipped(os.path.join(root, d))]
        for name in files:
            path = os.path.join(root, name)
            try:
                if stat.S_ISREG(os.stat(path).st_mode):
                    yield path
            except OSError:
                continue
    yield from PROC


def _leaks():
    found = [f"env {k}" for k, v in os.environ.items() if any(m in k + v for m in MARKERS)]
    for path in _readable_files():
        try:
            with open(path, "rb") as handle:
                data = handle.read(20_000_000)
        except OSError:
            continue
        found += [path for m in MARKERS if m.encode() in data][:1]
    return found


def test_the_sandbox_sees_no_secret() -> None:
    assert square_area(1) == 1
    leaks = _leaks()
    # Names only: the values must not travel on into the report.
    assert leaks == [], f"secrets visible in the sandbox: {leaks}"
'''

PROBE_FILES = {**FILES, PROBE_PATH: PROBE}
"""The repository of the secrets test: the probe is selected by the call graph (it calls the
renamed function), so it runs on the base commit and on the change."""


def secret_parts(values: Iterable[str], pem: str) -> list[str]:
    """What must never show up: each secret value, and each body line of the App's PEM key."""
    lines = [line for line in pem.splitlines() if line and not line.startswith("-----")]
    return [*values, *lines]


def found_in(text: str | bytes, secrets: Sequence[str]) -> list[str]:
    """The secrets (shortened, for the failure message) that occur in `text`."""
    data = text.encode("utf-8", "replace") if isinstance(text, str) else text
    return [s[:14] + "…" for s in secrets if s.encode() in data]


def files_holding(root: Path, secrets: Sequence[str]) -> dict[str, list[str]]:
    """Every file under `root` (bytes, as stored) that holds a secret."""
    hits: dict[str, list[str]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        found = found_in(path.read_bytes(), secrets)
        if found:
            hits[str(path.relative_to(root))] = found
    return hits


def git_history(repo: Path) -> str:
    """Every commit of every ref with its patch, and the repository's own config (git objects
    are compressed, so a byte search of the files would miss a secret committed into them)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                              check=True).stdout

    history = git("log", "--all", "-p", "--format=%H%n%an <%ae>%n%B")
    return history + git("config", "--list", "--local") + git("for-each-ref")


def forge_text(world: Deployment) -> str:
    """What the bot wrote on GitHub: every request body it sent, and the records they made."""
    double, repo = world.double, world.repo
    sent = [entry.body for entry in double.log if entry.body is not None]
    records = [
        [(i.title, i.body, i.pull.head if i.pull else None) for i in repo.issues.values()],
        [c.body for c in repo.comments.values()],
        [(r.name, r.external_id, r.output) for r in repo.check_runs.values()],
        repo.reactions,
    ]
    return json_text(sent) + json_text(records)


def store_text(world: Deployment, job_id: str) -> str:
    """The job as stored (request, result, error) and its whole timeline."""
    job = world.job(job_id)
    events = [e.model_dump(mode="json") for e in world.store.events(job_id)]
    return job.model_dump_json() + json_text(events)
