"""How often normalisation reads real GitHub issues right: operation, target and value, with and without the model.

The cases in benchmarks/data/normalise_real/cases_*.jsonl are real issues from public Python projects that asked
for a rename, a parameter change, a move, a new test or a small edit, each with what the maintainers actually did
(read from the fixing commit), as operations on the code at the fix's parent commit (`base_commit`). They were
collected and written down before any change to the normaliser was measured on them (SOURCES_*.md names each
thread, its licence and the fix).

Each repository is taken at `base_commit` from a full-history copy (the search tool's `fetch`, under --mirrors),
digested and profiled; `locate` localises the issue text; phase 3 normalises it twice: without any model (every
model call refused, so only rules and ranking features speak) and with the configured LLM (default: the embedded
SmolLM2-135M). A case counts on its first expected operation: `op`, `target` (qualified name), `both`, and
`exact` (also the value: new name, parameter name or destination module). A question counts as wrong: every
case had an answer. Cases whose repository is not fetched are listed as not run, never scored.

    .venv/bin/python benchmarks/bench_normalise_real.py [--split a|b] [--rows ROWS.jsonl] [--json OUT]
        [--mirrors /work/.mirror] [--work /work/bench-repos/normalise] [--limit N] [--only ID ...]
    .venv/bin/python benchmarks/bench_normalise_real.py [--split a|b] --from-rows ROWS.jsonl ...   # figures only
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_normalise import Repo, _git_repo, _value  # noqa: E402

from diffusellm.config import load_settings  # noqa: E402
from diffusellm.models.base import ChatMessage, ModelError, ModelInfo, TextGenerator  # noqa: E402
from diffusellm.models.llm import load_llm  # noqa: E402
from diffusellm.pipeline.issue_plan import Localiser, locate_localiser  # noqa: E402
from diffusellm.pipeline.normalise.issue import NeedsClarification, issue_text, normalise_issue  # noqa: E402

CASES = ROOT / "benchmarks" / "data" / "normalise_real"


class NoModel:
    """A `TextGenerator` that refuses every call: the normaliser's reading without any model."""

    def info(self) -> ModelInfo:
        return ModelInfo(name="none", backend="none", device="none", dtype="none")

    def generate(self, messages: Sequence[ChatMessage], **_: Any) -> str:
        raise ModelError("no model in this run")

    def generate_json(self, messages: Sequence[ChatMessage], schema: dict[str, Any], **_: Any) -> str:
        raise ModelError("no model in this run")

    def score(self, messages: Sequence[ChatMessage], continuation: str) -> float:
        raise ModelError("no model in this run")


def load_cases(folder: Path, split: str = "*") -> list[dict[str, Any]]:
    """Every case of every `cases_<split>.jsonl`, in file order."""
    cases: list[dict[str, Any]] = []
    for path in sorted(folder.glob(f"cases_{split}.jsonl")):
        cases += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return cases


def checkout(case: dict[str, Any], mirrors: Path, work: Path) -> Path | None:
    """The repository at the case's base commit (made once per repository and commit); None when not fetched."""
    owner, name = case["repo"].split("/")
    git_dir = mirrors / f"{owner}+{name}" / "repo"
    if not git_dir.is_dir():
        return None
    into = work / "src" / f"{owner}+{name}@{case['base_commit'][:12]}"
    if (into / ".git").is_dir():
        return into
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", f"--git-dir={git_dir}", "archive", case["base_commit"]], capture_output=True)
    if archive.returncode != 0:  # the snapshot leaves out its largest files (data, images): the code is enough
        listed = subprocess.run(["git", f"--git-dir={git_dir}", "ls-tree", "-r", "--name-only", case["base_commit"]],
                                capture_output=True, text=True, check=True).stdout.splitlines()
        for rel in (f for f in listed if f.endswith((".py", ".toml", ".cfg"))):  # archive reads every blob
            blob = subprocess.run(["git", f"--git-dir={git_dir}", "show", f"{case['base_commit']}:{rel}"],
                                  capture_output=True, check=True).stdout
            (into / rel).parent.mkdir(parents=True, exist_ok=True)
            (into / rel).write_bytes(blob)
        return _git_repo(into)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return _git_repo(into)


def score(case: dict[str, Any], result: object, seconds: float) -> dict[str, Any]:
    """One reading of one case against its first expected operation."""
    expected = case["expected"][0]
    want_value = expected.get("new_name") or expected.get("name") or expected.get("to_module")
    if isinstance(result, NeedsClarification):
        return {"asked": result.question[:200], "op_ok": False, "target_ok": False, "value_ok": False, "s": seconds}
    first = result.operations[0]  # type: ignore[attr-defined]
    value = _value(first)
    return {"op": first.op, "target": first.target, "value": value, "op_ok": first.op == expected["op"],
            "target_ok": first.target == expected["target"],
            "value_ok": want_value is None or value == want_value, "s": seconds}


def rates(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy over the scored rows."""
    n = len(rows) or 1
    both = [r for r in rows if r["op_ok"] and r["target_ok"]]
    return {"issues": len(rows), "op": round(sum(r["op_ok"] for r in rows) / n, 3),
            "target": round(sum(r["target_ok"] for r in rows) / n, 3), "both": round(len(both) / n, 3),
            "exact": round(sum(r["value_ok"] for r in both) / n, 3),
            "questions": sum("asked" in r for r in rows),
            "seconds_per_issue": round(sum(float(r["s"]) for r in rows) / n, 2)}


def run_case(case: dict[str, Any], repo: Repo, localiser: Localiser,
             readers: dict[str, TextGenerator], weight: float) -> dict[str, Any]:
    """Localise once, then read the issue with each reader (no model, the LLM)."""
    text = issue_text(case["title"], case["body"])  # as the GitHub worker reads an issue
    started = time.perf_counter()
    loc = localiser(repo.root, repo.graph, text, 1500)
    locate_s = time.perf_counter() - started
    target = case["expected"][0]["target"]
    row: dict[str, Any] = {"id": case["id"], "kind": case["kind"], "expected": case["expected"][0],
                           "target_in_candidates": any(s.qualname == target for s in loc.symbols),
                           "locate_s": round(locate_s, 2)}
    for label, llm in readers.items():
        started = time.perf_counter()
        result = normalise_issue(text, llm=llm, loc=loc, profile=repo.profile, model_weight=weight)
        row[label] = score(case, result, time.perf_counter() - started)
    return row


def summarise(rows: list[dict[str, Any]], cases: list[dict[str, Any]], labels: Sequence[str]) -> dict[str, Any]:
    """The figures: per reader, overall and by kind, and how many cases' targets were localised at all."""
    ran = {r["id"] for r in rows}
    return {
        "cases": len(cases), "scored": len(rows), "projects": len({c["repo"] for c in cases if c["id"] in ran}),
        "target_in_candidates": sum(r["target_in_candidates"] for r in rows),
        **{label: rates([r[label] for r in rows if label in r]) for label in labels},
        "by_kind": {kind: {label: rates([r[label] for r in rows if r["kind"] == kind and label in r])
                           for label in labels}
                    for kind in sorted({r["kind"] for r in rows})},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--mirrors", type=Path, default=Path("/work/.mirror"))
    parser.add_argument("--work", type=Path, default=Path("/work/bench-repos/normalise"))
    parser.add_argument("--cases", type=Path, default=CASES, help="folder of cases_*.jsonl")
    parser.add_argument("--split", default="*", help="a: development, b: held out (README there); default both")
    parser.add_argument("--rows", type=Path, default=None, help="append each case's row here (JSON lines) as it ends")
    parser.add_argument("--from-rows", type=Path, nargs="*", default=None,
                        help="only summarise rows written by earlier runs' --rows (no model, nothing run)")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--only", nargs="*", default=None, help="case ids")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--readers", default="no_model,model",
                        help="which readings to run: no_model (rules and ranking only), model, or both")
    args = parser.parse_args()
    cases = [c for c in load_cases(args.cases, args.split) if args.only is None or c["id"] in args.only][: args.limit]
    if args.from_rows is not None:
        rows = [json.loads(line) for path in args.from_rows for line in path.read_text(encoding="utf-8").splitlines()]
        rows = [r for r in rows if r["id"] in {c["id"] for c in cases}]
        labels = tuple(label for label in ("no_model", "model") if any(label in r for r in rows))
        print(json.dumps(summarise(rows, cases, labels), indent=2))
        return 0
    settings = load_settings()
    wanted = set(args.readers.split(","))
    started = time.perf_counter()
    readers: dict[str, TextGenerator] = {"no_model": NoModel()} if "no_model" in wanted else {}
    if "model" in wanted:
        readers["model"] = load_llm(settings.llm, settings.state_path())
    load_s = time.perf_counter() - started
    localiser = locate_localiser(args.work / "locate", settings.state_path() / "models", settings.generation.locate)
    rows: list[dict[str, Any]] = []
    not_run: list[dict[str, str]] = []
    for case in cases:
        root = checkout(case, args.mirrors, args.work)
        if root is None:
            not_run.append({"id": case["id"], "why": f"{case['repo']} is not fetched under {args.mirrors}"})
            continue
        repo = Repo(root, args.work)
        rows.append(run_case(case, repo, localiser, readers, settings.generation.normalise_model_weight))
        if args.rows:
            with args.rows.open("a", encoding="utf-8") as out:
                out.write(json.dumps(rows[-1]) + "\n")
        print(json.dumps({k: rows[-1][k] for k in ("id", "kind")} | {
            label: {k: rows[-1][label].get(k) for k in ("op", "target", "value", "asked")} for label in readers}),
            file=sys.stderr)
    summary: dict[str, Any] = {
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, python {platform.python_version()}",
        "model": settings.llm.model, "load_s": round(load_s, 1), "not_run": not_run,
        **summarise(rows, cases, tuple(readers)),
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "rows": rows}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
