"""How often the embedded model turns a free-text issue into the right operation and target.

Runs phase 3 (normalise) with the configured LLM (default: the embedded SmolLM2-135M) on free-text
issues written against examples/taskboard, each with the operation kind and target a maintainer would
choose, and prints op / target / both accuracy, clarification questions and seconds per issue.

    .venv/bin/python benchmarks/bench_normalise.py [--limit N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from diffusellm.config import load_settings  # noqa: E402
from diffusellm.models.llm import load_llm  # noqa: E402
from diffusellm.repo.digest import digest_repository  # noqa: E402
from diffusellm.repo.style import profile_style  # noqa: E402
from diffusellm.worker.normalise import NeedsClarification, normalise_issue  # noqa: E402
from diffusellm.worker.plan_context import localise_by_overlap  # noqa: E402

# (issue text, expected op, expected target)
ISSUES: list[tuple[str, str, str]] = [
    (
        "Please rename `get_verbose_flag` to `get_verbose_mode`: everywhere else we call it a mode.",
        "rename_symbol",
        "taskboard.helpers.get_verbose_flag",
    ),
    (
        "The `legacy` argument of default_board_path has been ignored since 0.1.0. Remove it.",
        "remove_parameter",
        "taskboard.paths.default_board_path",
    ),
    (
        "resolve_root should accept a keyword-only `strict` flag (default False) so callers can demand a marker file.",
        "add_parameter",
        "taskboard.paths.resolve_root",
    ),
    (
        "slugify is about text, not tasks; move it out of helpers into a new module taskboard.text.",
        "move_symbol",
        "taskboard.helpers.slugify",
    ),
    (
        "JsonStore.save should be called persist, to match the wording in the docs.",
        "rename_symbol",
        "taskboard.storage.JsonStore.save",
    ),
    (
        "parse_due_date crashes with ValueError on an empty string; it should raise a clear error message instead.",
        "edit_function",
        "taskboard.helpers.parse_due_date",
    ),
    ("Add a test that format_due shows 'overdue' for a date in the past.", "add_test", "taskboard.helpers.format_due"),
    (
        "Rename the Board.add_task method to Board.add so the API reads board.add(...).",
        "rename_symbol",
        "taskboard.models.Board.add_task",
    ),
]


def _repo(tmp: Path) -> Path:
    repo = tmp / "taskboard"
    shutil.copytree(ROOT / "examples" / "taskboard", repo)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "Import taskboard"]):
        subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@b", *args], cwd=repo, check=True)
    return repo


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=len(ISSUES))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    settings = load_settings()
    with tempfile.TemporaryDirectory() as tmp:
        repo = _repo(Path(tmp))
        graph = Path(tmp) / "graph.sqlite"
        digest_repository(repo, graph)
        profile = profile_style(repo)
        started = time.perf_counter()
        llm = load_llm(settings.llm, settings.state_path())
        load_s = time.perf_counter() - started
        rows = [_one(text, op, target, llm, repo, graph, profile) for text, op, target in ISSUES[: args.limit]]
    summary = _summary(rows, load_s, settings.llm.model)
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "rows": rows}, indent=2))
    return 0


def _one(text: str, op: str, target: str, llm: object, repo: Path, graph: Path, profile: object) -> dict[str, object]:
    started = time.perf_counter()
    loc = localise_by_overlap(repo, graph, text)
    result = normalise_issue(text, llm=llm, loc=loc, profile=profile)  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    if isinstance(result, NeedsClarification):
        return {"issue": text[:60], "asked": result.question, "op_ok": False, "target_ok": False, "s": seconds}
    first = result.operations[0]
    got_target = first.target
    return {
        "issue": text[:60],
        "op": first.op,
        "target": got_target,
        "op_ok": first.op == op,
        "target_ok": got_target == target,
        "in_candidates": target in loc_names(loc),
        "s": seconds,
    }


def loc_names(loc: object) -> set[str]:
    """The qualified names the localiser offered the model."""
    candidates = getattr(loc, "candidates", None) or getattr(loc, "symbols", None) or []
    return {getattr(c, "qualname", str(c)) for c in candidates}


def _summary(rows: list[dict[str, object]], load_s: float, model: str) -> dict[str, object]:
    n = len(rows)
    both = sum(1 for r in rows if r["op_ok"] and r["target_ok"])
    return {
        "model": model,
        "issues": n,
        "load_s": round(load_s, 1),
        "op_accuracy": sum(1 for r in rows if r["op_ok"]) / n,
        "target_accuracy": sum(1 for r in rows if r["target_ok"]) / n,
        "both": both / n,
        "questions": sum(1 for r in rows if "asked" in r),
        "seconds_per_issue": round(sum(float(r["s"]) for r in rows) / n, 1),  # type: ignore[arg-type]
        "rows": [{k: v for k, v in r.items() if k != "issue"} | {"issue": r["issue"]} for r in rows],
    }


if __name__ == "__main__":
    raise SystemExit(main())
