"""How many of the style facts maintainers declare the style profile recovers, on real projects.

Reads benchmarks/data/style_projects.yaml (PyPI sdists pinned by version, each with the facts its
maintainers declare: indent, quotes, line length, changelog format and file, test command; written
down before the style code was changed). Each sdist is downloaded once into benchmarks/.cache/style/
(`pip download --no-binary :all: --no-deps`), unpacked into a fresh git repository and profiled.

Also checks that a change touches no lines outside its edit, on each project:
- changelog: the entry written in the maintainers' format only adds lines, in one place;
- code: a function appended to one of the project's modules, formatted by the commit step's
  `ruff format --range` with the profile's ruff settings, leaves every other line as it was.

Test commands are compared after dropping an environment runner (`uv run`, `poetry run`, ...) and a
`python -m` prefix, and match when the declared words start the recovered command.

    python benchmarks/bench_style.py [--only NAME ...] [--json OUT]

With BENCH_STYLE_CODE=DIR the `diffusellm` package is imported from DIR (for example `git archive`
of an older commit), to measure earlier code on the same projects.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
# BENCH_STYLE_CODE=<a checkout of another commit> measures that commit's code on the same data.
sys.path.insert(0, os.environ.get("BENCH_STYLE_CODE", str(ROOT)))

from diffusellm.pipeline.deliver.changelog import changelog_entry  # noqa: E402
from diffusellm.pipeline.deliver.commit import format_changed_code  # noqa: E402
from diffusellm.pipeline.spec import Spec  # noqa: E402
from diffusellm.pipeline.understand.style.infer import profile_style, write_style_artifacts  # noqa: E402
from diffusellm.pipeline.understand.style.profile import StyleProfile  # noqa: E402

PROJECTS = ROOT / "benchmarks" / "data" / "style_projects.yaml"
CACHE = ROOT / "benchmarks" / ".cache" / "style" / "sdists"
FACTS = ("indent", "quotes", "line_length", "changelog_format", "changelog_file", "test_command")
_RUNNER = re.compile(r"^(?:(?:uv|poetry|pdm|hatch|pipenv) run\s+)?(?:python3?\s+-\w*m\s+)?")
SPEC = Spec.model_validate({"title": "Rename parse_value to read_value",
                            "operations": [{"op": "rename_symbol", "target": "pkg.mod.parse_value",
                                            "new_name": "read_value"}]})


def _sdist(requirement: str) -> Path:
    name, version = requirement.split("==")
    stem = f"{name.replace('-', '_')}-{version}".lower()
    found = [p for p in CACHE.glob("*.tar.gz") if p.name.lower().replace("-", "_").startswith(stem.replace("-", "_"))]
    if found:
        return found[0]
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps", "-q",
                    "-d", str(CACHE), requirement], check=True)
    return _sdist(requirement)


def _git(root: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    done = subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@b", *args], cwd=root,
                          capture_output=True, text=True, env=env, check=True)
    return done.stdout


def _repository(sdist: Path, into: Path) -> Path:
    with tarfile.open(sdist) as tar:
        tar.extractall(into, filter="data")
    [root] = [p for p in into.iterdir() if p.is_dir()]
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "Import the sdist")
    return root


def _command(text: str | None) -> list[str]:
    return _RUNNER.sub("", (text or "").strip()).split()


def recovered(profile: StyleProfile) -> dict[str, Any]:
    """The profile's answer for each fact."""
    return {
        "indent": profile.indent,
        "quotes": profile.quote_style,
        "line_length": profile.line_length,
        "changelog_format": profile.changelog.format,
        "changelog_file": (profile.changelog.path or "").rstrip("/") or None,
        "test_command": command.value if (command := getattr(profile, "test_command", None)) else None,
    }


def _matches(fact: str, declared: Any, got: Any) -> bool:
    if fact == "test_command":
        want = _command(declared)
        return bool(want) and _command(got)[: len(want)] == want
    return declared == got


def _diff_stats(root: Path) -> tuple[int, int, int]:
    """(added, deleted, hunks) of the working tree against HEAD, new files included."""
    _git(root, "add", "-A")
    diff = _git(root, "diff", "--cached", "-U0", "--no-color")
    added = sum(1 for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++"))
    deleted = sum(1 for line in diff.splitlines() if line.startswith("-") and not line.startswith("---"))
    return added, deleted, sum(1 for line in diff.splitlines() if line.startswith("@@"))


def _reset(root: Path) -> None:
    _git(root, "reset", "-q", "--hard")
    _git(root, "clean", "-qfd")


def changelog_check(root: Path, profile: StyleProfile) -> dict[str, Any]:
    """Write one entry; it must only add lines, in one hunk (or be a new fragment file)."""
    rel = changelog_entry(profile.changelog, SPEC, root, issue_number=1234, job_id="bench")
    added, deleted, hunks = _diff_stats(root)
    _reset(root)
    return {"path": rel, "added": added, "deleted": deleted, "hunks": hunks,
            "clean": rel is None or (deleted == 0 and hunks == 1)}


def _module(root: Path) -> str | None:
    """A module of the project's own code with at least 30 lines, the first by path."""
    tracked = _git(root, "ls-files", "*.py").splitlines()
    own = [p for p in tracked if not re.search(r"(^|/)(tests?|testing|docs?|bench\w*|scripts)/|(^|/)test_", p)]
    return next((p for p in sorted(own) if len((root / p).read_text(errors="replace").splitlines()) >= 30), None)


def code_check(root: Path, profile: StyleProfile, work: Path) -> dict[str, Any]:
    """Append a function to a module, format the changed range; nothing else may move."""
    rel = _module(root)
    if rel is None:
        return {"module": None, "clean": None}
    path = root / rel
    text = path.read_text(encoding="utf-8")
    start = len(text.splitlines()) + 1
    q = '"' if profile.quote_style == "double" else "'"
    pad = "\t" if profile.indent_char == "tab" else " " * profile.indent_width
    addition = f"\n\ndef _bench_probe(value,other = None):\n{pad}return [value,{q}x{q},other]\n"
    path.write_text(text.rstrip("\n") + "\n" + addition, encoding="utf-8")
    end = len(path.read_text(encoding="utf-8").splitlines())
    ruff = write_style_artifacts(profile, root, work / "style")["ruff_config"]
    before = path.read_text(encoding="utf-8")
    format_changed_code(root, {rel: [(start, end)]}, ruff, sys.executable)
    formatted = path.read_text(encoding="utf-8") != before
    added, deleted, hunks = _diff_stats(root)
    after = _git(root, "diff", "--cached", "-U0", "--no-color")
    _reset(root)
    outside = [line for line in after.splitlines() if line.startswith("-") and not line.startswith("---")]
    return {"module": rel, "added": added, "deleted": deleted, "hunks": hunks, "formatted": formatted,
            "clean": not outside and hunks == 1}


def run_project(project: dict[str, Any], work: Path) -> dict[str, Any]:
    root = _repository(_sdist(project["sdist"]), work / project["name"])
    profile = profile_style(root)
    got = recovered(profile)
    scored = {f: _matches(f, project["facts"][f], got[f]) for f in FACTS if project["facts"].get(f) is not None}
    return {
        "name": project["name"], "sdist": project["sdist"], "declared": project["facts"], "recovered": got,
        "scored": scored, "sources": {**getattr(profile, "sources", {}),
                                      "changelog": "; ".join(getattr(profile.changelog, "evidence", [])),
                                      "line_length": profile.line_length_source},
        "changelog_edit": changelog_check(root, profile), "code_edit": code_check(root, profile, work),
    }


def _print(results: list[dict[str, Any]]) -> None:
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"{platform.system()} {platform.release()}")
    code = os.environ.get("BENCH_STYLE_CODE")
    prefix = f"BENCH_STYLE_CODE={code} " if code else ""
    print(f"command: {prefix}python benchmarks/bench_style.py {' '.join(sys.argv[1:])}".rstrip())
    print()
    print("| project | facts recovered | misses (declared → recovered) | changelog edit | code edit |")
    print("|---|---|---|---|---|")
    total = hit = 0
    for r in results:
        misses = [f"{f}: {r['declared'][f]!r} → {r['recovered'][f]!r}" for f, ok in r["scored"].items() if not ok]
        total += len(r["scored"])
        hit += sum(r["scored"].values())
        log = r["changelog_edit"]
        log_cell = "no entry (none)" if log["path"] is None else (
            f"{'✓' if log['clean'] else '✗'} +{log['added']} −{log['deleted']} in `{log['path']}`")
        code = r["code_edit"]
        code_cell = "no module" if code["module"] is None else (
            f"{'✓' if code['clean'] else '✗'} +{code['added']} −{code['deleted']}, {code['hunks']} hunk(s)"
            f"{', formatted' if code['formatted'] else ', not formatted'}")
        print(f"| {r['name']} | {sum(r['scored'].values())}/{len(r['scored'])} | {'; '.join(misses) or '—'} "
              f"| {log_cell} | {code_cell} |")
    clean_logs = sum(1 for r in results if r["changelog_edit"]["clean"])
    clean_code = sum(1 for r in results if r["code_edit"]["clean"])
    print()
    print(f"facts recovered: {hit}/{total}; projects with every declared fact: "
          f"{sum(1 for r in results if all(r['scored'].values()))}/{len(results)}")
    print(f"edits touching nothing outside themselves: changelog {clean_logs}/{len(results)}, "
          f"code {clean_code}/{len(results)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    projects: list[dict[str, Any]] = yaml.safe_load(PROJECTS.read_text(encoding="utf-8"))
    chosen = [p for p in projects if not args.only or p["name"] in args.only]
    with tempfile.TemporaryDirectory(prefix="bench-style-") as tmp:
        results = [run_project(p, Path(tmp)) for p in chosen]
    _print(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
