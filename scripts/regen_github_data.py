#!/usr/bin/env python3
"""Regenerate tests/data/github/ from the npm packages it was cut from (pinned versions).

    python scripts/regen_github_data.py            # writes tests/data/github/
    python scripts/regen_github_data.py --check    # exits 1 if the committed files differ

Needs `npm` (only `npm pack`, which downloads a package's tarball from the registry) and Python's
standard library. The tarballs' shasums are checked against the values pinned below.

- openapi/api.github.com.bot-subset.json: the paths a GitHub-App bot uses (PATH_PATTERNS) from
  `@octokit/openapi`'s generated/api.github.com.json, plus the transitive closure of the
  `#/components/...` they reference.
- webhook-examples/api.github.com/<event>/<name>: the example payloads the tests load (EXAMPLES),
  picked from `@octokit/webhooks-examples`'s api.github.com/index.json, which holds every example
  of an event in one list; the file names are those of octokit/webhooks' payload-examples/ folder.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data" / "github"

OPENAPI = ("@octokit/openapi", "23.0.2", "743435033357133786d56271b48a67991a614b0a")
OPENAPI_FILE = "package/generated/api.github.com.json"
WEBHOOKS = ("@octokit/webhooks-examples", "7.6.1", "ed0ecd42fa3fc559252448562b60980e15cef8b5")
WEBHOOKS_FILE = "package/api.github.com/index.json"

# Relative to /repos/{owner}/{repo} unless absolute ("**": the path and everything below it).
_REPO = r"/repos/\{owner\}/\{repo\}"
PATH_PATTERNS = [
    rf"{_REPO}",
    rf"{_REPO}/issues(/.*)?",
    rf"{_REPO}/pulls(/.*)?",
    rf"{_REPO}/git/(refs|ref|matching-refs|commits|trees|blobs)(/.*)?",
    rf"{_REPO}/contents/\{{path\}}",
    rf"{_REPO}/installation",
    rf"{_REPO}/collaborators/\{{username\}}/permission",
    rf"{_REPO}/check-runs(/.*)?",
    rf"{_REPO}/commits/\{{ref\}}/(check-runs|statuses|status)",
    rf"{_REPO}/statuses/\{{sha\}}",
    rf"{_REPO}/labels(/.*)?",
    rf"{_REPO}/branches/\{{branch\}}",
    r"/app",
    r"/app/installations",
    r"/app/installations/\{installation_id\}",
    r"/app/installations/\{installation_id\}/access_tokens",
    r"/installation/repositories",
    r"/rate_limit",
]
SUBSET_NOTE = " SUBSET: only the paths used by the bot, with referenced components."

# (event folder, file name, action the example must have, index in the package's list of that event's examples)
EXAMPLES = [
    ("installation", "created.payload.json", "created", 1),
    ("installation_repositories", "added.payload.json", "added", 1),
    ("issue_comment", "created.payload.json", "created", 2),
    ("issues", "labeled.payload.json", "labeled", 9),
    ("ping", "payload.json", None, 1),
    ("pull_request", "closed.payload.json", "closed", 3),
    ("pull_request_review", "submitted.payload.json", "submitted", 2),
    ("push", "payload.json", None, 2),
]


def npm_file(package: tuple[str, str, str], member: str, workdir: Path) -> bytes:
    """One file out of a package's tarball, fetched with `npm pack` and checked against its pinned shasum."""
    name, version, shasum = package
    done = subprocess.run(
        ["npm", "pack", f"{name}@{version}", "--silent", "--pack-destination", str(workdir)],
        check=True, capture_output=True, text=True,
    )
    tarball = workdir / done.stdout.strip().splitlines()[-1]
    data = tarball.read_bytes()
    if hashlib.sha1(data).hexdigest() != shasum:
        raise SystemExit(f"{name}@{version}: shasum {hashlib.sha1(data).hexdigest()} is not the pinned {shasum}")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        extracted = tar.extractfile(member)
        if extracted is None:
            raise SystemExit(f"{name}@{version} has no {member}")
        return extracted.read()


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        mapping = cast(dict[str, Any], node)
        ref = mapping.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/"):
            found.add(ref)
        for value in mapping.values():
            found |= _refs(value)
    elif isinstance(node, list):
        for value in cast(list[Any], node):
            found |= _refs(value)
    return found


def bot_subset(doc: dict[str, Any]) -> dict[str, Any]:
    """The bot's paths and the components they reach, in the source's key order (names sorted)."""
    wanted = [re.compile(f"^{p}$") for p in PATH_PATTERNS]
    paths = {p: item for p, item in sorted(doc["paths"].items()) if any(w.match(p) for w in wanted)}
    keep: dict[str, set[str]] = {}
    todo = list(_refs(paths))
    while todo:
        ref = todo.pop()
        _, _, kind, name = ref.split("/", 3)
        if name in keep.setdefault(kind, set()):
            continue
        keep[kind].add(name)
        todo += _refs(doc["components"][kind][name])
    components = {
        kind: {name: doc["components"][kind][name] for name in sorted(keep[kind])} for kind in sorted(keep)
    }
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if key in ("tags", "x-webhooks"):
            continue
        if key == "info":
            value = {**value, "description": value["description"] + SUBSET_NOTE}
        out[key] = paths if key == "paths" else components if key == "components" else value
    return out


def generate(workdir: Path) -> dict[str, bytes]:
    """Relative path under tests/data/github/ -> contents."""
    files: dict[str, bytes] = {}
    spec = json.loads(npm_file(OPENAPI, OPENAPI_FILE, workdir))
    subset = bot_subset(spec)
    files["openapi/api.github.com.bot-subset.json"] = json.dumps(subset, indent=1).encode()
    events = {e["name"]: e["examples"] for e in json.loads(npm_file(WEBHOOKS, WEBHOOKS_FILE, workdir))}
    for event, name, action, index in EXAMPLES:
        payload = events[event][index]
        if payload.get("action") != action:
            raise SystemExit(f"{event}[{index}] has action {payload.get('action')!r}, not {action!r}")
        text = json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
        files[f"webhook-examples/api.github.com/{event}/{name}"] = text.encode()
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description="Regenerate tests/data/github/ from pinned npm packages.")
    parser.add_argument("--check", action="store_true", help="compare with the committed files, write nothing")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = generate(Path(tmp))
    differ = [rel for rel, data in files.items() if not (OUT / rel).is_file() or (OUT / rel).read_bytes() != data]
    if args.check:
        for rel in differ:
            print(f"differs: tests/data/github/{rel}")
        return 1 if differ else 0
    for rel, data in files.items():
        (OUT / rel).parent.mkdir(parents=True, exist_ok=True)
        (OUT / rel).write_bytes(data)
        print(f"{'wrote' if rel in differ else 'unchanged'}: tests/data/github/{rel} ({len(data):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
