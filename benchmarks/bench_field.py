"""Field benchmark: real projects from pinned PyPI sdists, their own environments and suites, and
generated refactor cases judged by each project's full suite.

For each project in benchmarks/data/field_projects.toml: download the sdist (pip), commit it to a
fresh git repository, build its environment (cold, then cached), run its suite on the base, then
for each case kind pick a target from the code, run the whole pipeline (`run_spec`) and judge the
result with the full suite in the project's environment, the old name gone, and no unexpected
file changed. Prints one JSON line per case and a summary table (correct / refused / wrong /
crashed per kind). Needs network (PyPI) and bubblewrap.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_field.py --work /tmp/field [--projects a,b] [--cases k1,k2]
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
import zipfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from diffusellm.config import Settings, load_settings
from diffusellm.errors import DiffuseLLMError
from diffusellm.pipeline.project import Project
from diffusellm.pipeline.runner import run_spec
from diffusellm.pipeline.spec import parse_spec
from diffusellm.pipeline.validate.env_cache import Environment, prepare_environment
from diffusellm.pipeline.validate.findings import parse_junit, tests_run
from diffusellm.pipeline.validate.sandbox import BubblewrapSandbox, Limits

DATA = Path(__file__).parent / "data" / "field_projects.toml"
SKIP_DIRS = {"tests", "test", "testing", "docs", "doc", "examples", "benchmarks", "bench", "build"}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True)
    return done.stdout


def fetch(name: str, version: str, work: Path) -> Path:
    """The sdist unpacked and committed to its own git repository (reused when present)."""
    repo = work / "repos" / f"{name}-{version}"
    if (repo / ".git").is_dir():
        return repo
    sdists = work / "sdists"
    sdists.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                    f"{name}=={version}", "-d", str(sdists)], check=True)
    stem = re.sub(r"[-_.]+", "[-_.]", re.escape(name).replace(r"\-", "-"))
    archive = next(p for p in sdists.iterdir() if re.match(rf"(?i){stem}-{re.escape(version)}\.(tar\.gz|zip)$", p.name))
    unpacked = work / "unpack" / repo.name
    shutil.rmtree(unpacked, ignore_errors=True)
    if archive.name.endswith(".zip"):
        zipfile.ZipFile(archive).extractall(unpacked)
    else:
        with tarfile.open(archive) as tar:
            tar.extractall(unpacked, filter="data")
    (top,) = list(unpacked.iterdir())
    shutil.move(str(top), str(repo))
    git(repo.parent, "init", "-q", "-b", "main", str(repo))
    git(repo, "add", "-A", "--force")  # all the sdist ships: a generated version.py it .gitignores too
    git(repo, "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", f"{name} {version}")
    return repo


def suite(tree: Path, env: Environment, sandbox: BubblewrapSandbox, work: Path) -> dict[str, Any]:
    """The project's whole suite in its environment, in the sandbox, on a copy of `tree`."""
    copy = work / "suite-run"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(tree, copy, ignore=shutil.ignore_patterns(".git"))
    paths = [str(copy), *([str(copy / "src")] if (copy / "src").is_dir() else [])]
    argv = [str(env.python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "junit_family=xunit1",
            "--junitxml=.bench-junit.xml", "--continue-on-collection-errors"]
    result = sandbox.run(argv, workdir=copy, env={"PYTHONPATH": ":".join(paths)}, ro_paths=env.mounts)
    failing, _seen = parse_junit(copy, copy / ".bench-junit.xml")
    return {"exit": result.returncode, "tests_run": tests_run(copy, copy / ".bench-junit.xml"),
            "failing": sorted(f.key[1] for f in failing), "seconds": round(result.duration_s, 1)}


def _library_files(project: Project, name: str) -> list[str]:
    """The project's own importable code: files of its packages, or the top-level module named
    after the project; not scripts beside them (bin/jp.py, a top-level benchmark.py)."""
    def library(rel: str) -> bool:
        parent = (project.root / rel).parent
        if (parent / "__init__.py").is_file():
            return True
        stem = rel.rsplit("/", 1)[-1].removesuffix(".py")
        return stem.replace("_", "-").lower() == name.replace("_", "-").lower()

    return sorted(f for f in project.python_files()
                  if f.endswith(".py") and not _is_test_or_tool(f) and library(f))


def _is_test_or_tool(rel: str) -> bool:
    parts = rel.split("/")
    name = parts[-1]
    return (bool(SKIP_DIRS & set(parts[:-1])) or name.startswith("test") or name.endswith("_test.py")
            or name in ("conftest.py", "setup.py", "noxfile.py", "tasks.py", "fabfile.py"))


def _word_files(project: Project, name: str) -> list[str]:
    pattern = re.compile(rf"\b{re.escape(name)}\b")
    return [f for f in project.python_files() if pattern.search(project.read(f))]


def candidates(repo: Path, name: str) -> dict[str, dict[str, Any]]:
    """One operation per case kind, picked deterministically from the project's own code."""
    project = Project.load(repo)
    found: dict[str, dict[str, Any]] = {}
    modules = {rel: project.module_of(rel) for rel in _library_files(project, name)}
    for rel, module in modules.items():
        try:
            tree = ast.parse(project.read(rel))
        except SyntaxError:
            continue
        _pick(found, project, rel, module, tree, modules)
    return found


def _pick(found: dict[str, dict[str, Any]], project: Project, rel: str, module: str, tree: ast.Module,
          modules: dict[str, str]) -> None:
    # another module of its package: for a package's __init__, the package's own submodules
    package = module if rel.endswith("__init__.py") else module.rpartition(".")[0]
    siblings = [m for r, m in modules.items() if m != module and package and m.rpartition(".")[0] == package
                and not r.endswith("__init__.py")]
    for node in tree.body:
        public = not getattr(node, "name", "_").startswith("_")
        if isinstance(node, ast.FunctionDef) and public:
            spread = len(_word_files(project, node.name))
            if spread >= 2:
                found.setdefault("rename_function", {"op": "rename_symbol", "target": f"{module}.{node.name}",
                                                     "new_name": f"{node.name}_renamed"})
                if siblings:
                    found.setdefault("move_function", {"op": "move_symbol", "target": f"{module}.{node.name}",
                                                       "to_module": siblings[0]})
                found.setdefault("move_function_new", {"op": "move_symbol", "target": f"{module}.{node.name}",
                                                       "to_module": f"{package + '.' if package else ''}bench_moved"})
            found.setdefault("add_kwonly_parameter", {"op": "add_parameter", "target": f"{module}.{node.name}",
                                                      "name": "bench_flag", "default": "None"})
            unused = _unused_parameter(node)
            if unused:
                found.setdefault("remove_parameter", {"op": "remove_parameter", "target": f"{module}.{node.name}",
                                                      "name": unused})
        elif isinstance(node, ast.ClassDef) and public:
            if len(_word_files(project, node.name)) >= 2:
                found.setdefault("rename_class", {"op": "rename_symbol", "target": f"{module}.{node.name}",
                                                  "new_name": f"{node.name}Renamed"})
            for item in node.body:
                if (isinstance(item, ast.FunctionDef) and not item.name.startswith("_")
                        and any(f".{item.name}(" in project.read(f) for f in project.python_files())):
                    found.setdefault("rename_method", {"op": "rename_symbol",
                                                       "target": f"{module}.{node.name}.{item.name}",
                                                       "new_name": f"{item.name}_renamed"})
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name.isupper() and not name.startswith("_"):
                found.setdefault("rename_constant", {"op": "rename_symbol", "target": f"{module}.{name}",
                                                     "new_name": f"{name}_RENAMED"})


def _unused_parameter(func: ast.FunctionDef) -> str | None:
    used = {n.id for n in ast.walk(func) if isinstance(n, ast.Name)}
    for arg in [*func.args.args, *func.args.kwonlyargs]:
        if arg.arg not in ("self", "cls") and arg.arg not in used:
            return arg.arg
    return None


def expected_files(repo: Path, op: dict[str, Any]) -> set[str]:
    """Files a correct change may touch: those naming the old name, the destination (module or
    stub), changelogs."""
    project = Project.load(repo)
    old = str(op["target"]).rsplit(".", 1)[-1]
    allowed = set(_word_files(project, old))
    if op["op"] == "move_symbol":
        dest = str(op["to_module"]).replace(".", "/")
        # the destination module, or its .pyi stub (the module's types: they move with the code)
        allowed |= {f"{base}{dest}{tail}{ext}" for base in ("", "src/") for tail in ("", "/__init__")
                    for ext in (".py", ".pyi")}
    return allowed


def old_name_left(tree: Path, op: dict[str, Any]) -> list[str]:
    """Places on the branch that still use the old name as the changed symbol (import, def, call)."""
    if op["op"] != "rename_symbol":
        return []
    old = str(op["target"]).rsplit(".", 1)[-1]
    kind_method = str(op["target"]).count(".") >= 2 and str(op["target"]).split(".")[-2][:1].isupper()
    word = re.escape(old)
    if kind_method:  # calls through instances are the suite's to judge: `.format(` is also str.format
        return _method_left(tree, str(op["target"]))
    # Imports of the old name anywhere; its definition only in its own module (a test may define
    # an unrelated local class or function of the same name).
    own = Project.load(tree).path_of(str(op["target"]).rsplit(".", 1)[0]) or "*.py"
    return _grep(tree, rf"import .*\b{word}\b", "*.py") + _grep(tree, rf"^(def|class) {word}\b|^{word} =", own)


def _method_left(tree: Path, target: str) -> list[str]:
    """The class still defining the old method name, or no longer defining the new one."""
    module, cls, method = target.rsplit(".", 2)
    rel = Project.load(tree).path_of(module)
    if rel is None:
        return [f"{module}: module gone"]
    empty: list[ast.stmt] = []
    body = next((n.body for n in ast.parse((tree / rel).read_text(encoding="utf-8")).body
                 if isinstance(n, ast.ClassDef) and n.name == cls), empty)
    names = {n.name for n in body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    return ([f"{rel}: {cls}.{method} still defined"] if method in names else []) + (
        [] if f"{method}_renamed" in names else [f"{rel}: {cls}.{method}_renamed not defined"])


def _grep(tree: Path, pattern: str, where: str) -> list[str]:
    done = subprocess.run(["git", "-C", str(tree), "grep", "-n", "-E", pattern, "--", where],
                          capture_output=True, text=True, check=False)
    return done.stdout.splitlines()[:5]


def run_case(repo: Path, kind: str, op: dict[str, Any], settings: Settings, sandbox: BubblewrapSandbox,
             env: Environment, base: dict[str, Any], work: Path) -> dict[str, Any]:
    spec = parse_spec({"title": f"bench {kind}", "operations": [op]})
    started = time.monotonic()
    try:
        report = run_spec(settings, spec, repo, sandbox=sandbox)
    except DiffuseLLMError as exc:
        return {"verdict": "refused", "why": exc.message.splitlines()[0][:200], "seconds": _since(started)}
    except Exception as exc:  # noqa: BLE001 - a crash is what this benchmark counts
        return {"verdict": "crashed", "why": f"{type(exc).__name__}: {exc}"[:300], "seconds": _since(started)}
    seconds = _since(started)
    if report.status != "succeeded" or report.branch is None:
        why = report.stopped_because or "; ".join(
            f"{c.name}: {c.state} {c.new_failures[:1] or c.skipped_reason or ''}" for c in report.validation.checks)
        return {"verdict": "refused", "why": f"{report.status}: {why}"[:300], "seconds": seconds}
    tree = work / "judge"
    shutil.rmtree(tree, ignore_errors=True)
    git(repo, "worktree", "add", "-q", str(tree), report.branch)
    try:
        after = suite(tree, env, sandbox, work)
        new = sorted(set(after["failing"]) - set(base["failing"]))
        left = old_name_left(tree, op)
        unexpected = sorted(set(report.changed_files) - expected_files(repo, op) - {report.changelog})
    finally:
        git(repo, "worktree", "remove", "--force", str(tree))
        git(repo, "branch", "-D", report.branch)
    ok = not new and not left and not unexpected and after["tests_run"] >= base["tests_run"] * 0.9
    return {"verdict": "correct" if ok else "wrong", "new_failures": new[:5], "old_name_left": left,
            "unexpected_files": unexpected, "tests_run": after["tests_run"], "seconds": seconds}


def _since(started: float) -> float:
    return round(time.monotonic() - started, 1)


def summarise(logs: list[Path], kinds: list[str]) -> None:
    """The tables for docs/PERFORMANCE.md from runs' printed lines (a later log's case replaces an
    earlier one's): environments, then each case per project, then the totals (a project whose
    environment failed counts every kind as refused, as the run does)."""
    lines = [json.loads(line) for log in logs for line in log.read_text(encoding="utf-8").splitlines()
             if line.startswith("{")]
    latest = {(r["project"], r.get("case")): r for r in lines}
    rows = list(latest.values())
    print("| project | environment | packages | cold s | cached s | base tests | base failing |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        if "base_tests_run" in r:
            print(f"| {r['project']} | {r['environment']} | {r['packages']} | {r['cold_s']} | {r['cached_s']} "
                  f"| {r['base_tests_run']} | {r['base_failing']} |")
        elif "environment" in r:
            print(f"| {r['project']} | not built: {str((r['environment'] or {}).get('error'))[:80]} | | | | | |")
    cases = [r for r in rows if "case" in r]
    projects = list(dict.fromkeys(r["project"] for r in cases))
    print("\n| case | " + " | ".join(projects) + " |\n|---|" + "---|" * len(projects))
    for kind in kinds:
        cells = {r["project"]: r["verdict"] for r in cases if r["case"] == kind}
        print(f"| {kind} | " + " | ".join(cells.get(p, "-") for p in projects) + " |")
    tally = Counter(r["verdict"] for r in cases)
    tally["refused"] += len(kinds) * sum(1 for r in rows if "environment" in r and "base_tests_run" not in r)
    ran = tally["correct"] + tally["refused"] + tally["wrong"] + tally["crashed"]
    print(f"\ncases with a candidate: {ran}; correct {tally['correct']}, refused {tally['refused']}, "
          f"wrong {tally['wrong']}, crashed {tally['crashed']}; no candidate {tally['no candidate']}; "
          f"correct share {tally['correct'] / max(ran, 1):.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--projects", default="")
    parser.add_argument("--cases", default="")
    parser.add_argument("--summarise", type=Path, nargs="*", default=None,
                        help="print the tables from runs' printed output (later logs win); runs nothing")
    args = parser.parse_args()
    data = tomllib.loads(DATA.read_text(encoding="utf-8"))
    if args.summarise is not None:
        summarise(args.summarise, list(data["cases"]))
        return
    if args.work is None:
        parser.error("--work is required to run")
    wanted = [p for p in args.projects.split(",") if p]  # run in the order given
    kinds = [k for k in data["cases"] if not args.cases or k in args.cases.split(",")]
    settings = load_settings(None, [f"state_dir={args.work / 'state'}"])
    sandbox = BubblewrapSandbox(limits=Limits(wall_seconds=1800, cpu_seconds=1800))
    tally: dict[str, Counter[str]] = defaultdict(Counter)
    entries = {e["name"]: e for e in data["project"]}
    for name in wanted or list(entries):
        _project(entries[name], kinds, settings, sandbox, args.work, tally)
    print("| case | correct | refused | wrong | crashed |\n|---|---|---|---|---|")
    for kind in kinds:
        c = tally[kind]
        print(f"| {kind} | {c['correct']} | {c['refused']} | {c['wrong']} | {c['crashed']} |")


def _project(entry: dict[str, str], kinds: list[str], settings: Settings, sandbox: BubblewrapSandbox,
             work: Path, tally: dict[str, Counter[str]]) -> None:
    name, version = entry["name"], entry["version"]
    repo = fetch(name, version, work)
    cache = settings.state_path() / "environments"
    timings: list[float] = []
    env: Environment | Any = None
    for _ in range(2):
        started = time.monotonic()
        env = prepare_environment(repo, settings.validation.environment, default_python=sys.executable,
                                  cache_dir=cache, sandbox=sandbox)
        timings.append(_since(started))
    if not isinstance(env, Environment):
        print(json.dumps({"project": name, "environment": env.model_dump() if env else None}), flush=True)
        for kind in kinds:
            tally[kind]["refused"] += 1
        return
    base = suite(repo, env, sandbox, work)
    print(json.dumps({"project": f"{name}=={version}", "environment": env.info.how, "packages": env.info.packages,
                      "cold_s": timings[0], "cached_s": timings[1], "base_tests_run": base["tests_run"],
                      "base_failing": len(base["failing"]), "suite_s": base["seconds"]}), flush=True)
    picked = candidates(repo, name)
    for kind in kinds:
        op = picked.get(kind)
        if op is None:
            print(json.dumps({"project": name, "case": kind, "verdict": "no candidate"}), flush=True)
            continue
        outcome = run_case(repo, kind, op, settings, sandbox, env, base, work)
        tally[kind][outcome["verdict"]] += 1
        print(json.dumps({"project": name, "case": kind, "op": op, **outcome}), flush=True)


if __name__ == "__main__":
    main()
