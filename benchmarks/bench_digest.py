"""Benchmark of phase 2 digestion: the Django package digested in full, then after one change.

    .venv/bin/python benchmarks/bench_digest.py [--repeat 3] [--out FILE]

Fetches the Django wheel from PyPI into benchmarks/.cache (once), copies its `django/` package
into a fresh git repository, commits it, digests it, changes one file and digests again.
Prints the figures and writes them as JSON (default benchmarks/.cache/bench_digest.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from diffusellm.pipeline.understand.digest.build import DigestReport, digest_repository
from diffusellm.pipeline.understand.graph import KnowledgeGraph
from diffusellm.pipeline.understand.trie import SignatureTrie

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
DJANGO = "django==5.2.*"
CHANGED = "django/utils/text.py"
GIT_ENV = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid"}


def django_wheel() -> Path:
    """The Django 5.2 wheel, downloaded with pip the first time."""
    found = sorted(CACHE.glob("[Dd]jango-5.2.*-py3-none-any.whl"))
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", DJANGO,
                        "-d", str(CACHE), "-q"], check=True)
        found = sorted(CACHE.glob("[Dd]jango-5.2.*-py3-none-any.whl"))
    return found[-1]


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                   env={**os.environ, **GIT_ENV})


def make_repo(wheel: Path, root: Path) -> Path:
    """A git repository holding only the wheel's `django/` package, committed."""
    repo = root / "repo"
    with zipfile.ZipFile(wheel) as archive:
        members = [m for m in archive.namelist() if m.startswith("django/")]
        archive.extractall(repo, members)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Import Django")
    return repo


def machine() -> dict[str, Any]:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    return {"nproc": nproc, "cpu": model, "python": platform.python_version(),
            "system": platform.platform()}


def lines_of_python(repo: Path) -> int:
    return sum(len(p.read_bytes().splitlines()) for p in repo.rglob("*.py"))


def full_runs(repo: Path, root: Path, repeat: int) -> tuple[list[float], DigestReport, Path]:
    """Digest from scratch `repeat` times into fresh databases; keep the last one."""
    times: list[float] = []
    report: DigestReport | None = None
    db = root / "graph-0.db"
    for run in range(repeat):
        db = root / f"graph-{run}.db"
        started = time.perf_counter()
        report = digest_repository(repo, db)
        times.append(time.perf_counter() - started)
    assert report is not None
    return times, report, db


def incremental_runs(repo: Path, db: Path, repeat: int) -> tuple[list[float], DigestReport]:
    """Change one file (a new function each time) and digest again."""
    times: list[float] = []
    report: DigestReport | None = None
    target = repo / CHANGED
    for run in range(repeat):
        with target.open("a", encoding="utf-8") as handle:
            handle.write(f"\n\ndef bench_added_{run}(value):\n    return capfirst(value)\n")
        started = time.perf_counter()
        report = digest_repository(repo, db)
        times.append(time.perf_counter() - started)
        assert report.files_parsed == 1, report
    assert report is not None
    return times, report


def queries(db: Path) -> dict[str, float]:
    """Seconds for a few graph queries and the trie rebuild, on the digested graph."""
    out: dict[str, float] = {}
    with KnowledgeGraph(db) as graph:
        started = time.perf_counter()
        callers = graph.callers("django.utils.text.capfirst")
        out["callers_capfirst_s"] = time.perf_counter() - started
        out["callers_capfirst_count"] = len(callers)
        started = time.perf_counter()
        graph.tests_reaching(["django.utils.text.capfirst"], [])
        out["tests_reaching_s"] = time.perf_counter() - started
        started = time.perf_counter()
        trie = SignatureTrie.from_graph(graph)
        out["trie_build_s"] = time.perf_counter() - started
        out["trie_functions"] = trie.size
        started = time.perf_counter()
        trie.similar("(value)", "capfirst")
        out["trie_similar_s"] = time.perf_counter() - started
    return {k: round(v, 4) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=CACHE / "bench_digest.json")
    args = parser.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    wheel = django_wheel()
    root = Path(tempfile.mkdtemp(prefix="bench-digest-"))
    try:
        repo = make_repo(wheel, root)
        full, report, db = full_runs(repo, root, args.repeat)
        incremental, again = incremental_runs(repo, db, args.repeat)
        figures = {
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "date": time.strftime("%Y-%m-%d"),
            "machine": machine(),
            "input": {"wheel": wheel.name, "files": report.files_total,
                      "lines": lines_of_python(repo)},
            "full_digest_s": {"min": round(min(full), 3), "median": round(
                statistics.median(full), 3), "runs": [round(t, 3) for t in full]},
            "one_file_redigest_s": {"min": round(min(incremental), 3), "median": round(
                statistics.median(incremental), 3), "runs": [round(t, 3) for t in incremental]},
            "graph": {"symbols": report.symbols, "imports": report.imports,
                      "calls": report.calls, "parse_errors": len(report.parse_errors),
                      "db_bytes": db.stat().st_size},
            "incremental_report": again.model_dump(exclude={"parse_errors"}),
            "queries": queries(db),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)
    text = json.dumps(figures, indent=2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
