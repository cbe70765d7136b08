"""Benchmark for localisation on real issues: SWE-bench Lite's dev set, locate against plain BM25.

Each issue's repository is checked out at its `base_commit` (from a local clone of a full-history
copy); `locate` ranks files and functions for the issue text, and so does plain BM25 over whole
files (and over whole functions), in the same run. The answer is the non-test Python files the
fixing patch changes and the innermost functions, methods or classes holding the lines it changes
(in the file before the fix). Acc@k counts an issue as found when any answer is in the first k.

Run (repositories from the search tool's `fetch`, cloned with `git clone --shared` into --src):
  nice -n 10 .venv/bin/python benchmarks/bench_swe_locate.py --src /work/bench-repos/src \
      --work /work/bench-repos/index [--repos astropy/astropy ...] [--per-repo 2]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_locate import machine  # noqa: E402  (this folder: the write-up's machine line)

from diffusellm.pipeline.locate.chunks import Chunk, chunk_source, git_blob_id, is_test_path  # noqa: E402
from diffusellm.pipeline.locate.embed import Embedder, make_embedder  # noqa: E402
from diffusellm.pipeline.locate.graph import Edge, chunk_edges  # noqa: E402
from diffusellm.pipeline.locate.index import RepoIndex, build_index  # noqa: E402
from diffusellm.pipeline.locate.lexical import LexicalIndex, tokenize  # noqa: E402
from diffusellm.pipeline.locate.query import in_scope, search  # noqa: E402
from diffusellm.pipeline.locate.scope import own_code  # noqa: E402
from diffusellm.pipeline.project import list_python_files, module_name_for  # noqa: E402
from diffusellm.pipeline.settings import LocateSettings  # noqa: E402

DATA = Path("/work/shared/benchmarks/swe-bench-lite-localise-dev.jsonl")
KS = (1, 5, 10)
_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+\d+(?:,\d+)? @@")


@dataclass(frozen=True)
class Instance:
    """One issue, the commit it was filed against, and the patch that fixed it."""

    repo: str
    instance_id: str
    base_commit: str
    created_at: str
    text: str
    patch: str


@dataclass
class Answer:
    """What the fix changed: files, and (path, qualname) of the functions it changed."""

    files: set[str]
    functions: set[tuple[str, str]]


@dataclass
class Tally:
    """Hits at 1/5/10 over the issues scored, for files and for functions."""

    file: list[int] = field(default_factory=lambda: [0, 0, 0])
    function: list[int] = field(default_factory=lambda: [0, 0, 0])
    n_file: int = 0
    n_function: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    """CPU time of this process: wall time on a shared machine says more about the others."""

    def add(self, answer: Answer, files: list[str], functions: list[tuple[str, str]]) -> None:
        """Score one issue's rankings."""
        self.n_file += 1
        for j, k in enumerate(KS):
            self.file[j] += int(bool(answer.files.intersection(files[:k])))
        if answer.functions:
            self.n_function += 1
            for j, k in enumerate(KS):
                self.function[j] += int(bool(answer.functions.intersection(functions[:k])))

    def row(self) -> dict[str, Any]:
        """Accuracies (fractions) and mean seconds per issue."""
        return {
            "file": [round(v / max(self.n_file, 1), 3) for v in self.file],
            "function": [round(v / max(self.n_function, 1), 3) for v in self.function],
            "issues": self.n_file, "issues_with_function": self.n_function,
            "s_per_issue": round(self.seconds / max(self.n_file, 1), 2),
            "cpu_s_per_issue": round(self.cpu_seconds / max(self.n_file, 1), 2),
        }


def load_instances(path: Path) -> list[Instance]:
    """The dev set's issues, each repository's in the order they were filed."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    found = [Instance(r["repo"], r["instance_id"], r["base_commit"], r["created_at"],
                      r["problem_statement"], r["patch"]) for r in rows]
    return sorted(found, key=lambda i: (i.repo, i.created_at))


def touched_lines(patch: str) -> dict[str, set[int]]:
    """Per changed file (old path), the old-file lines the patch removes or inserts after."""
    out: dict[str, set[int]] = {}
    lines: set[int] = set()
    old = 0
    for line in patch.splitlines():
        if line.startswith("--- "):
            name = line[4:].strip()
            lines = out.setdefault(name[2:] if name.startswith("a/") else name, set())
        elif (m := _HUNK.match(line)) is not None:
            old = int(m[1])
        elif line.startswith("-") and not line.startswith("---"):
            lines.add(old)
            old += 1
        elif line.startswith("+") and not line.startswith("+++"):
            lines.add(max(old - 1, 1))
        elif line.startswith(" "):
            old += 1
    return {p: ls for p, ls in out.items() if p != "/dev/null"}


def innermost(chunks: list[Chunk], line: int) -> Chunk | None:
    """The innermost function, method or class holding this line."""
    holding = [c for c in chunks if c.kind != "module" and c.start_line <= line <= c.end_line]
    return max(holding, key=lambda c: c.start_line) if holding else None


def answer_for(src: Path, inst: Instance) -> Answer:
    """Files and functions the fix changes (tests and non-Python files left out)."""
    answer = Answer(set(), set())
    for path, lines in touched_lines(inst.patch).items():
        if not path.endswith(".py") or is_test_path(path):
            continue
        answer.files.add(path)
        data = git(src, "show", f"{inst.base_commit}:{path}", check=False)
        if not data:
            continue
        chunks = chunk_source(path, module_name_for(src, path) or Path(path).stem, data)
        for line in lines:
            hit = innermost(chunks, line)
            if hit is not None:
                answer.functions.add((hit.path, hit.qualname))
    return answer


def git(src: Path, *args: str, check: bool = True) -> bytes:
    """Output of a git command in the checkout."""
    done = subprocess.run(["git", "-C", str(src), *args], capture_output=True, check=check)
    return done.stdout if done.returncode == 0 else b""


def checkout(src: Path, commit: str) -> None:
    """Put the work tree at `commit`, with nothing left over from the last one. A snapshot from
    `fetch` may lack its largest blobs (data files, images): when the checkout cannot read one,
    the clone is made sparse (Python and config files only, all the index needs) and retried."""
    try:
        git(src, "checkout", "-q", "-f", "--detach", commit)
    except subprocess.CalledProcessError as exc:
        if b"unable to read sha1 file" not in (exc.stderr or b""):
            raise
        git(src, "sparse-checkout", "set", "--no-cone", "*.py", "*.pyi", "*.toml", "*.cfg")
        git(src, "checkout", "-q", "-f", "--detach", commit)
    git(src, "clean", "-q", "-f", "-d", "-x")


class PlainBM25:
    """Plain BM25 over whole files and over whole functions (raw text, the project's tokenizer),
    test files left out; tokens cached by blob id across commits."""

    def __init__(self) -> None:
        self.file_tokens: dict[tuple[str, str], list[str]] = {}
        self.func_tokens: dict[tuple[str, str, int, int], list[str]] = {}

    def rank(self, root: Path, index: RepoIndex, text: str) -> tuple[list[str], list[tuple[str, str]]]:
        """Files best first, then functions best first."""
        query = tokenize(text)
        paths = [p for p in list_python_files(root) if p.endswith(".py") and not is_test_path(p)]
        docs: list[list[str]] = []
        raw: dict[str, list[str]] = {}
        for path in paths:
            data = (root / path).read_bytes()
            key = (path, git_blob_id(data))
            if key not in self.file_tokens:
                self.file_tokens[key] = tokenize(path.replace("/", " ") + "\n" + data.decode(
                    "utf-8", "replace"))
            docs.append(self.file_tokens[key])
            raw[path] = data.decode("utf-8", "replace").splitlines()
        files = [paths[i] for i in LexicalIndex.build(docs).ranking(query, 10)]
        funcs = [c for c in index.chunks if c.kind != "module" and c.path in raw]
        func_docs: list[list[str]] = []
        for c in funcs:
            key = (c.path, c.blob, c.start_line, c.end_line)
            if key not in self.func_tokens:
                self.func_tokens[key] = tokenize(c.path.replace("/", " ") + "\n" + "\n".join(
                    raw[c.path][c.start_line - 1:c.end_line]))
            func_docs.append(self.func_tokens[key])
        best = LexicalIndex.build(func_docs).ranking(query, 10)
        return files, [(funcs[i].path, funcs[i].qualname) for i in best]


Ranker = Callable[[RepoIndex, str, list[Edge]], tuple[list[str], list[tuple[str, str]]]]
DEFAULTS = LocateSettings()
ABLATIONS: dict[str, dict[str, Any]] = {
    "locate": {},
    "- own package filter": {"own_package": False},
    "- small k (k=60)": {"rrf_k": 60.0},
    "- function BM25 (whole-file BM25)": {"function_bm25": False},
    "- written frames and paths": {"frames": False},
    "- literal matching": {"literals": False},
    "+ words once": {"unique_query_words": True},
    "- graph": {"graph": False},
    "- dense (no embedding)": {"embedder": "none"},
    "k=1": {"rrf_k": 1.0},
    "k=2": {"rrf_k": 2.0},
    "k=10": {"rrf_k": 10.0},
    "k=20": {"rrf_k": 20.0},
    "all off, k=60 (old fusion)": {
        "own_package": False, "rrf_k": 60.0, "function_bm25": False, "frames": False,
        "literals": False},
}
"""Each row switches one fix off, or (+) one measured-worse option on; the dense row drops the
dense signal from the same index."""


def ranker_for(changes: dict[str, Any]) -> Ranker:
    """`search` with the default settings changed as given (chunk-derived call graph: no
    digestion here)."""
    options = DEFAULTS.model_copy(update=changes)
    no_dense = options.embedder == "none"

    def rank(index: RepoIndex, text: str, edges: list[Edge]) -> tuple[
            list[str], list[tuple[str, str]]]:
        used = RepoIndex(index.root, index.chunks, index.ids, None, None, index.lexical,
                         index.stats) if no_dense else index
        result = search(used, text, top=10, edges=edges, options=options)
        return [f.path for f in result.files], [(f.path, f.qualname) for f in result.functions]

    return rank


def _within(scope: set[str]) -> Callable[[Chunk], bool]:
    return lambda chunk: chunk.path in scope


def by_repo(instances: list[Instance]) -> Iterator[tuple[str, list[Instance]]]:
    """Instances grouped by repository, in order."""
    groups: dict[str, list[Instance]] = {}
    for inst in instances:
        groups.setdefault(inst.repo, []).append(inst)
    yield from groups.items()


def run(instances: list[Instance], src_dir: Path, work: Path, embedder: Embedder,
        rankers: dict[str, Ranker], rows_path: Path | None = None) -> dict[str, Any]:
    """Index each checkout incrementally and score every ranker on every issue."""
    plain = PlainBM25()
    per_issue: list[dict[str, Any]] = []
    done: set[str] = {str(r["id"]) for r in read_rows(rows_path)} if rows_path else set()
    index_s: list[float] = []
    skipped: list[str] = []
    for repo, group in by_repo(instances):
        src = src_dir / repo.replace("/", "+")
        if not src.is_dir():
            skipped.extend(i.instance_id for i in group)
            continue
        previous: RepoIndex | None = None
        for inst in group:
            if inst.instance_id in done:
                continue
            try:
                checkout(src, inst.base_commit)
            except subprocess.CalledProcessError as exc:  # pvlib's checkout fails here: see stderr
                print(f"{inst.instance_id}: checkout failed: {exc.stderr!r}", file=sys.stderr)
                skipped.append(inst.instance_id)
                previous = None
                continue
            answer = answer_for(src, inst)
            if not answer.files:
                skipped.append(inst.instance_id)
                continue
            started = time.perf_counter()
            scope = in_scope(list_python_files(src), DEFAULTS, include_tests=False)
            index = build_index(src, work / repo.replace("/", "+") / embedder.name, embedder,
                                previous=previous, embed_only=_within(scope))
            index_s.append(time.perf_counter() - started)
            previous = index
            row: dict[str, Any] = {"id": inst.instance_id, "files": sorted(answer.files),
                                   "functions": sorted(answer.functions),
                                   "index_s": round(index_s[-1], 2),
                                   "embedded": index.stats.embedded,
                                   "own_files": len(own_code(c.path for c in index.chunks))}
            edges = chunk_edges(index.chunks)
            search(index, "warm up", edges=edges)  # the first query loads the vector index
            for name, ranker in rankers.items():
                started, cpu = time.perf_counter(), time.process_time()
                files, functions = ranker(index, inst.text, edges)
                row[name] = {"files": files[:10], "functions": functions[:10],
                             "s": round(time.perf_counter() - started, 3),
                             "cpu_s": round(time.process_time() - cpu, 3)}
            started, cpu = time.perf_counter(), time.process_time()
            files, functions = plain.rank(src, index, inst.text)
            row["plain-bm25"] = {"files": files[:10], "functions": functions[:10],
                                 "s": round(time.perf_counter() - started, 3),
                                 "cpu_s": round(time.process_time() - cpu, 3)}
            per_issue.append(row)
            if rows_path is not None:
                with rows_path.open("a", encoding="utf-8") as out:
                    out.write(json.dumps(row) + "\n")
            print(f"{inst.instance_id}: index {index_s[-1]:.1f}s", file=sys.stderr, flush=True)
    return {
        "index_s_mean": round(sum(index_s) / max(len(index_s), 1), 2),
        "skipped": skipped, "per_issue": per_issue,
    }


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Per-issue rows written so far (one JSON object a line; the first row of an issue counts)."""
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return list({str(r["id"]): r for r in reversed(rows)}.values())[::-1]


def _pairs(items: list[list[str]]) -> list[tuple[str, str]]:
    return [(str(p), str(q)) for p, q in items]


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracies and seconds per issue of every method, from per-issue rows."""
    tallies: dict[str, Tally] = {}
    for row in rows:
        answer = Answer({str(f) for f in row["files"]}, set(_pairs(row["functions"])))
        methods: dict[str, Any] = {k: v for k, v in row.items() if isinstance(v, dict)}
        for name, got in methods.items():
            tally = tallies.setdefault(name, Tally())
            tally.add(answer, [str(f) for f in got["files"]], _pairs(got["functions"]))
            tally.seconds += float(got["s"])
            tally.cpu_seconds += float(got.get("cpu_s", 0.0))
    return {name: t.row() for name, t in tallies.items()}


def table(results: dict[str, Any]) -> str:
    """Markdown table: one row per method."""
    lines = ["| method | file @1 | @5 | @10 | function @1 | @5 | @10 | s/issue | CPU s/issue |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, row in results.items():
        f, g = row["file"], row["function"]
        lines.append(f"| {name} | {f[0]:.3f} | {f[1]:.3f} | {f[2]:.3f} "
                     f"| {g[0]:.3f} | {g[1]:.3f} | {g[2]:.3f} | {row['s_per_issue']:.2f} "
                     f"| {row['cpu_s_per_issue']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    """Parse arguments, run, print the table and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--src", type=Path, default=Path("/work/bench-repos/src"))
    parser.add_argument("--work", type=Path, default=Path("/work/bench-repos/index"))
    parser.add_argument("--repos", nargs="*", default=None)
    parser.add_argument("--per-repo", type=int, default=0, help="first N issues a repository")
    parser.add_argument("--embedder", default="static", choices=["static", "minilm", "minilm-int8"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ablations", action="store_true", help="also each fix switched off")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/.cache/swe-locate.json")
    parser.add_argument("--rows", type=Path, default=None,
                        help="per-issue rows, appended as they come; issues already there are "
                             "skipped (default: --out with .rows.jsonl)")
    parser.add_argument("--summarise", action="store_true", help="only score the rows written")
    parser.add_argument("--extra-rows", nargs="*", type=Path, default=[],
                        help="more row files to score with --rows (runs split by repository)")
    parser.add_argument("--before", nargs="*", type=Path, default=[],
                        help="rows of an earlier locate (run with that commit's code): shown as "
                             "'locate before', all methods scored on the issues both have")
    args = parser.parse_args()
    rows_path: Path = args.rows or args.out.with_suffix(".rows.jsonl")
    rows_path.parent.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"machine": machine(), "command": " ".join(sys.argv)}
    if not args.summarise:
        instances = load_instances(args.data)
        if args.repos:
            instances = [i for i in instances if i.repo in args.repos]
        if args.per_repo:
            instances = [i for _, g in by_repo(instances) for i in g[:args.per_repo]]
        embedder = make_embedder(args.embedder, threads=args.threads,
                                 state_dir=args.work / "models")
        rankers = {name: ranker_for(changes) for name, changes in ABLATIONS.items()
                   if args.ablations or not name.startswith(("-", "all", "k="))}
        report |= run(instances, args.src, args.work, embedder, rankers, rows_path)
    rows = [r for p in [rows_path, *args.extra_rows] for r in read_rows(p)]
    if args.repos:  # ids are owner__name-number
        rows = [r for r in rows if str(r["id"]).rsplit("-", 1)[0].replace("__", "/") in args.repos]
    if args.before:
        before = {str(r["id"]): r for p in args.before for r in read_rows(p)}
        rows = [r | {"locate before": before[str(r["id"])]["locate"]} for r in rows
                if str(r["id"]) in before]
    report["results"] = summarise(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"{len(rows)} issues scored; {report['machine']}")
    print(table(report["results"]))

if __name__ == "__main__":
    main()
