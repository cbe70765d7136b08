"""Benchmark for localisation: Acc@1/5/10 of BM25, dense and fused rankings, and indexing speed.

Queries are the first sentences of real docstrings from PyPI packages; the answer is the function
(and file) that docstring belongs to. Docstrings are blanked in the index, so a query never meets
its own text. Run: .venv/bin/python benchmarks/bench_locate.py [--django] [--embedders ...]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import re
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from diffusellm.pipeline.locate.chunks import Chunk, without_docstrings  # noqa: E402
from diffusellm.pipeline.locate.embed import Embedder, MiniLMEmbedder, StaticEmbedder  # noqa: E402
from diffusellm.pipeline.locate.graph import chunk_edges  # noqa: E402
from diffusellm.pipeline.locate.index import (  # noqa: E402
    CACHE_NAME,
    RepoIndex,
    build_index,
    load_chunk_cache,
)
from diffusellm.pipeline.locate.query import Signals, collect_signals, fuse, weights_for  # noqa: E402

CACHE = ROOT / "benchmarks" / ".cache" / "locate"
DJANGO = "5.2.19"
PACKAGES = {"requests": "2.34.2", "click": "8.5.1", "humanize": "4.17.0"}
KNOWN = {**PACKAGES, "django": DJANGO}
KS = (1, 5, 10)
MAX_QUERIES = 300
_SENTENCE = re.compile(r"^(.+?[.!?])(?:\s|$)", re.S)


@dataclass(frozen=True)
class Query:
    """A docstring's first sentence and the definition it documents."""

    text: str
    path: str
    qualname: str


def fetch(name: str, version: str) -> Path:
    """The package's source tree, downloaded once with pip and unpacked into its own git repo."""
    dest = CACHE / "src" / f"{name}-{version}"
    if (dest / ".git").is_dir():
        return dest
    CACHE.mkdir(parents=True, exist_ok=True)
    wheels = list(CACHE.glob(f"{name}-{version}-*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary",
                        ":all:", f"{name}=={version}", "-d", str(CACHE)], check=True)
        wheels = list(CACHE.glob(f"{name}-{version}-*.whl"))
    shutil.rmtree(dest, ignore_errors=True)
    with zipfile.ZipFile(wheels[0]) as archive:
        for member in archive.namelist():
            if member.endswith(".py") and ".dist-info/" not in member:
                archive.extract(member, dest)
    subprocess.run(["git", "init", "-q", str(dest)], check=True)
    return dest


def first_sentence(doc: str) -> str:
    """The docstring's first sentence, on one line."""
    para = " ".join(doc.strip().split("\n\n")[0].split())
    match = _SENTENCE.match(para)
    return (match[1] if match else para).strip()


def make_queries(chunks: list[Chunk]) -> list[Query]:
    """One query per documented function, method or class with a 4+ word first sentence."""
    seen: set[str] = set()
    out: list[Query] = []
    for chunk in chunks:
        text = first_sentence(chunk.docstring) if chunk.kind != "module" else ""
        if len(text.split()) >= 4 and text not in seen and not text.startswith(":"):
            seen.add(text)
            out.append(Query(text, chunk.path, chunk.qualname))
    if len(out) > MAX_QUERIES:
        out = random.Random(0).sample(out, MAX_QUERIES)
    return out


def _hits(ranked: list[str], answer: str) -> list[int]:
    return [int(answer in ranked[:k]) for k in KS]


def evaluate(index: RepoIndex, queries: list[Query]) -> dict[str, dict[str, list[int]]]:
    """Hit counts at 1/5/10 for each method, at file and function level."""
    edges = chunk_edges(index.chunks)
    chunks = index.chunks
    totals: dict[str, dict[str, list[int]]] = {}

    def add(method: str, level: str, ranked: list[str], answer: str) -> None:
        row = totals.setdefault(method, {}).setdefault(level, [0, 0, 0])
        for j, hit in enumerate(_hits(ranked, answer)):
            row[j] += hit

    for q in queries:
        signals = collect_signals(index, q.text, edges)
        for method in ("bm25", "dense"):
            ranked = [i for i in signals.chunk_rankings[method] if chunks[i].kind != "module"]
            add(method, "function", [chunks[i].qualname for i in ranked], q.qualname)
            add(method, "file", signals.file_rankings[method], q.path)
        variants = {"fused": signals, "fused-no-graph": _without_graph(signals)}
        for method, sig in variants.items():
            files, functions = fuse(index, sig, edges, top=10, include_tests=True,
                                    weights=weights_for(index.embedder.name))
            add(method, "function", [f.qualname for f in functions], q.qualname)
            add(method, "file", [f.path for f in files], q.path)
    return totals


def _without_graph(signals: Signals) -> Signals:
    return replace(
        signals,
        chunk_rankings={k: v for k, v in signals.chunk_rankings.items() if k != "graph"},
        file_rankings={k: v for k, v in signals.file_rankings.items() if k != "graph"},
    )


def embedders(names: list[str], threads: int, work: Path) -> dict[str, Embedder]:
    """The embedders to compare, by benchmark name."""
    table: dict[str, Any] = {
        "minilm-128": lambda: MiniLMEmbedder(threads=threads, max_seq_length=128),
        "minilm-64": lambda: MiniLMEmbedder(threads=threads, max_seq_length=64),
        "minilm-int8-128": lambda: MiniLMEmbedder(threads=threads, quantize=True),
        "minilm-int8-64": lambda: MiniLMEmbedder(threads=threads, max_seq_length=64,
                                                 quantize=True),
        "static": lambda: StaticEmbedder(base=MiniLMEmbedder(threads=threads, max_seq_length=8),
                                         table_path=work / "static-v2.npz"),
    }
    return {n: table[n]() for n in names}


def run_accuracy(names: list[str], threads: int, work: Path,
                 packages: dict[str, str]) -> dict[str, Any]:
    """Index every package with every embedder (docstrings blanked) and score all queries."""
    results: dict[str, Any] = {}
    for emb_name, embedder in embedders(names, threads, work).items():
        embedder.embed(["warm up"])
        totals: dict[str, dict[str, list[int]]] = {}
        n_queries = n_chunks = 0
        index_s = 0.0
        for pkg, version in packages.items():
            repo = fetch(pkg, version)
            index_dir = work / f"{pkg}-{emb_name}"
            shutil.rmtree(index_dir, ignore_errors=True)
            started = time.perf_counter()
            index = build_index(repo, index_dir, embedder, transform=without_docstrings)
            index_s += time.perf_counter() - started
            raw = load_chunk_cache(index_dir / CACHE_NAME)
            queries = make_queries([c for rows in raw.values() for c in rows])
            n_queries += len(queries)
            n_chunks += len(index.chunks)
            for method, levels in evaluate(index, queries).items():
                for level, row in levels.items():
                    acc = totals.setdefault(method, {}).setdefault(level, [0, 0, 0])
                    for j, v in enumerate(row):
                        acc[j] += v
        results[emb_name] = {
            "queries": n_queries, "chunks": n_chunks, "index_s": round(index_s, 1),
            "chunks_per_s": round(n_chunks / index_s, 1),
            "acc": {m: {lv: [round(v / n_queries, 3) for v in row] for lv, row in lv_rows.items()}
                    for m, lv_rows in totals.items()},
        }
    return results


def run_django(names: list[str], threads: int, work: Path) -> dict[str, Any]:
    """Full index of the Django package, then re-indexes after one file changed: from disk (a
    new process) and from the index still in memory (a long-running worker)."""
    repo = fetch("django", DJANGO)
    target = repo / "django" / "utils" / "text.py"
    original = target.read_bytes()
    out: dict[str, Any] = {}
    tables = work / "django-tables"  # a fresh static table: its distillation is timed too
    shutil.rmtree(tables, ignore_errors=True)
    for emb_name, embedder in embedders(names, threads, tables).items():
        started = time.perf_counter()
        embedder.embed(["warm up"])  # loads the model; distils the static table the first time
        load_s = time.perf_counter() - started
        index_dir = work / f"django-{emb_name}"
        shutil.rmtree(index_dir, ignore_errors=True)
        full = build_index(repo, index_dir, embedder)
        try:
            target.write_bytes(original + b"\n\ndef bench_added(value):\n    return value\n")
            cold = build_index(repo, index_dir, embedder)
            target.write_bytes(original + b"\n\ndef bench_added_again(value):\n    return 1\n")
            warm = build_index(repo, index_dir, embedder, previous=cold)
        finally:
            target.write_bytes(original)
        started = time.perf_counter()
        edges = chunk_edges(warm.chunks)
        edges_s = time.perf_counter() - started
        started = time.perf_counter()
        text = "slugify should keep unicode letters when allow_unicode is set"
        files, _ = fuse(warm, collect_signals(warm, text, edges), edges, top=10,
                        include_tests=False, weights=weights_for(warm.embedder.name))
        out[emb_name] = {
            "model_load_s": round(load_s, 2), "full": vars(full.stats),
            "one_file_cold": vars(cold.stats), "one_file_warm": vars(warm.stats),
            "edges_s": round(edges_s, 2), "search_s": round(time.perf_counter() - started, 2),
            "top_file": files[0].path,
        }
    return out


def machine() -> str:
    """nproc and CPU model, for the write-up."""
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor())
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return f"{nproc} cores, {cpu}, Python {platform.python_version()}"


def table(results: dict[str, Any]) -> str:
    """Markdown table: one row per embedder and method."""
    lines = ["| embedder | method | file @1 | @5 | @10 | function @1 | @5 | @10 |",
             "|---|---|---|---|---|---|---|---|"]
    for emb, row in results.items():
        for method, levels in row["acc"].items():
            f, g = levels["file"], levels["function"]
            lines.append(f"| {emb} | {method} | {f[0]:.3f} | {f[1]:.3f} | {f[2]:.3f} "
                         f"| {g[0]:.3f} | {g[1]:.3f} | {g[2]:.3f} |")
    return "\n".join(lines)


def main() -> None:
    """Parse arguments, run the parts asked for, print tables and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--embedders", nargs="+",
                        default=["minilm-128", "minilm-int8-128", "minilm-64", "static"])
    parser.add_argument("--django", nargs="*", default=None,
                        help="also time Django indexing with these embedders")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--packages", nargs="+", default=list(PACKAGES), choices=list(KNOWN))
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--out", type=Path, default=CACHE / "results.json")
    args = parser.parse_args()
    work = CACHE / "work"
    packages = {p: KNOWN[p] for p in args.packages}
    report: dict[str, Any] = {"machine": machine(), "packages": packages}
    if not args.skip_accuracy:
        report["accuracy"] = run_accuracy(args.embedders, args.threads, work, packages)
        print(table(report["accuracy"]))
    if args.django is not None:
        report["django"] = run_django(args.django or ["static"], args.threads, work)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "accuracy"}, indent=2))


if __name__ == "__main__":
    main()
