"""How often normalisation turns a free-text issue into the right operation and target.

Runs phase 3 (rules, then the configured LLM; default the embedded SmolLM2-135M) on the issues in
benchmarks/data/normalise_issues.yaml, written against examples/taskboard and humanize 4.17.0 (the
sdist set-up downloads), each with the operation and target a maintainer would choose, or "ask" when
the right answer is a question. Prints op / target / both accuracy per split ("exact" also needs the
new name, parameter or module right), questions, how many the rule pre-pass read, and seconds.

    .venv/bin/python benchmarks/bench_normalise.py [--split dev|heldout|all] [--localise locate|overlap]
        [--method rank|draft] [--limit N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from diffusellm.config import load_settings  # noqa: E402
from diffusellm.models.base import TextGenerator  # noqa: E402
from diffusellm.models.llm import load_llm  # noqa: E402
from diffusellm.pipeline.issue_plan import Localiser, locate_localiser, overlap_localiser  # noqa: E402
from diffusellm.pipeline.normalise.issue import NeedsClarification, normalise_issue  # noqa: E402
from diffusellm.pipeline.normalise.rules import rule_spec  # noqa: E402
from diffusellm.pipeline.spec import AddParameter, MoveSymbol, Operation, RemoveParameter, RenameSymbol  # noqa: E402
from diffusellm.pipeline.understand.digest.build import digest_repository  # noqa: E402
from diffusellm.pipeline.understand.style.infer import profile_style  # noqa: E402
from diffusellm.pipeline.understand.style.profile import StyleProfile  # noqa: E402

ISSUES = ROOT / "benchmarks" / "data" / "normalise_issues.yaml"
SDIST = ROOT / ".state" / "sdists" / "humanize-4.17.0.tar.gz"


def _git_repo(repo: Path) -> Path:
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "Import"]):
        subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@b", *args], cwd=repo, check=True)
    return repo


def _repos(tmp: Path) -> dict[str, Path]:
    taskboard = tmp / "taskboard"
    shutil.copytree(ROOT / "examples" / "taskboard", taskboard)
    with tarfile.open(SDIST) as tar:
        tar.extractall(tmp, filter="data")
    return {"taskboard": _git_repo(taskboard), "humanize": _git_repo(tmp / "humanize-4.17.0")}


class Repo:
    """One digested benchmark repository."""

    def __init__(self, root: Path, work: Path) -> None:
        self.root = root
        self.graph = work / f"{root.name}.sqlite"
        digest_repository(root, self.graph)
        self.profile: StyleProfile = profile_style(root)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--split", choices=["dev", "heldout", "all"], default="all")
    parser.add_argument("--localise", choices=["locate", "overlap"], default="locate")
    parser.add_argument("--method", choices=["rank", "draft"], default="rank")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    cases: list[dict[str, str]] = yaml.safe_load(ISSUES.read_text(encoding="utf-8"))
    cases = [c for c in cases if args.split in ("all", c["split"])][: args.limit]
    settings = load_settings()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        repos = {name: Repo(root, work) for name, root in _repos(work).items()}
        localiser = (
            locate_localiser(work / "locate", settings.state_path() / "models", settings.generation.locate)
            if args.localise == "locate"
            else overlap_localiser
        )
        started = time.perf_counter()
        llm = load_llm(settings.llm, settings.state_path())
        load_s = time.perf_counter() - started
        weight = settings.generation.normalise_model_weight
        rows = [_one(case, llm, repos[case["repo"]], localiser, args.method, weight) for case in cases]
    summary = _summary(rows, load_s, settings.llm.model, args.localise)
    summary |= {"method": args.method, "model_weight": weight}
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "rows": rows}, indent=2))
    return 0


def _one(
    case: dict[str, str], llm: TextGenerator, repo: Repo, localiser: Localiser, method: str, weight: float
) -> dict[str, Any]:
    started = time.perf_counter()
    loc = localiser(repo.root, repo.graph, case["text"], 1500)
    result = normalise_issue(case["text"], llm=llm, loc=loc, profile=repo.profile, method=method, model_weight=weight)  # type: ignore[arg-type]
    row: dict[str, Any] = {"split": case["split"], "repo": case["repo"], "issue": case["text"][:70]}
    row["path"] = "rules" if rule_spec(case["text"], loc, "t") is not None else method
    row["in_candidates"] = case["op"] == "ask" or any(s.qualname == case["target"] for s in loc.symbols)
    if isinstance(result, NeedsClarification):
        ok = case["op"] == "ask"
        return row | {"asked": result.question, "op_ok": ok, "target_ok": ok, "s": time.perf_counter() - started}
    first = result.operations[0]
    value = _value(first)
    return row | {
        "op": first.op,
        "target": first.target,
        "value": value,
        "op_ok": first.op == case["op"],
        "target_ok": first.target == case["target"],
        "value_ok": value == case.get("value", value),
        "s": time.perf_counter() - started,
    }


def _value(op: Operation) -> str | None:
    """The new name, parameter or module of a refactoring operation."""
    if isinstance(op, RenameSymbol):
        return op.new_name
    if isinstance(op, AddParameter | RemoveParameter):
        return op.name
    if isinstance(op, MoveSymbol):
        return op.to_module
    return None


def _rates(rows: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(rows) or 1
    return {
        "issues": len(rows),
        "op": round(sum(1 for r in rows if r["op_ok"]) / n, 3),
        "target": round(sum(1 for r in rows if r["target_ok"]) / n, 3),
        "both": round(sum(1 for r in rows if r["op_ok"] and r["target_ok"]) / n, 3),
        "exact": round(sum(1 for r in rows if r["op_ok"] and r["target_ok"] and r.get("value_ok", True)) / n, 3),
        "questions": sum(1 for r in rows if "asked" in r),
        "target_in_candidates": sum(1 for r in rows if r["in_candidates"]),
        "seconds_per_issue": round(sum(float(r["s"]) for r in rows) / n, 1),
        "by_rules": sum(1 for r in rows if r["path"] == "rules"),
        "both_by_rules": sum(1 for r in rows if r["path"] == "rules" and r["op_ok"] and r["target_ok"]),
    }


_SHOWN = ("split", "path", "op", "target", "value", "asked", "op_ok", "target_ok", "value_ok")


def _summary(rows: list[dict[str, Any]], load_s: float, model: str, localise: str) -> dict[str, Any]:
    splits = sorted({str(r["split"]) for r in rows})
    return {
        "model": model,
        "localise": localise,
        "load_s": round(load_s, 1),
        "all": _rates(rows),
        **{split: _rates([r for r in rows if r["split"] == split]) for split in splits},
        "rows": [{k: v for k, v in r.items() if k in _SHOWN} | {"issue": r["issue"]} for r in rows],
    }


if __name__ == "__main__":
    raise SystemExit(main())
