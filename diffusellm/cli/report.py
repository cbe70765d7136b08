"""CLI glue: builds the stage inputs from settings, calls the stages, and renders their results."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from diffusellm.cli.render import validation_table
from diffusellm.config import Settings
from diffusellm.errors import InputError, RepositoryError
from diffusellm.state import repo_state


def run_profile(settings: Settings, path: Path) -> dict[str, Any]:
    """Profile a repository's style and write its artifacts to the state folder."""
    from diffusellm.pipeline.understand.style.infer import profile_style, write_style_artifacts

    if not any(path.rglob("*.py")):
        raise RepositoryError(f"{path} contains no Python files", hint="pass a Python project's folder")
    state = repo_state(settings.state_path(), path).ensure()
    profile = profile_style(path)
    artifacts = write_style_artifacts(profile, path, state.style_dir)
    data = profile.model_dump(mode="json")
    data["artifacts"] = {name: str(p) for name, p in artifacts.items()}
    return data


def print_profile(console: Console, data: dict[str, Any]) -> None:
    """Readable summary of a style profile."""
    console.print(f"[bold]style profile[/] ({data['files_profiled']} files)", markup=True)
    rows = [
        ("indent", data["indent"]),
        ("quotes", data["quote_style"]),
        ("line length", str(data["line_length"])),
        ("docstrings", data["docstring_style"]),
        ("commits", data["commit_convention"]),
        ("changelog", data["changelog"]["format"]),
    ]
    for key, value in rows:
        console.print(f"  {key:<12} {value}")
    for kind, convention in data["naming"].items():
        console.print(f"  naming.{kind:<10} {convention}")
    for name, path in data["artifacts"].items():
        console.print(f"  wrote {name}: {path}")


def run_digest(settings: Settings, path: Path, show_progress: bool) -> dict[str, Any]:
    """Digest a repository into its knowledge graph, with a progress bar for people."""
    from diffusellm.pipeline.understand.digest.build import digest_repository

    state = repo_state(settings.state_path(), path).ensure()
    if not show_progress:
        report = digest_repository(path, state.graph_db)
    else:
        columns = (TextColumn("digesting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("digest", total=None)
            report = digest_repository(
                path,
                state.graph_db,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    data = report.model_dump(mode="json")
    data["graph_db"] = str(state.graph_db)
    return data


def print_digest(console: Console, data: dict[str, Any]) -> None:
    """Readable summary of a digestion."""
    console.print(
        f"[bold]digested[/] {data['files_total']} files in {data['seconds']:.2f}s: "
        f"{data['files_parsed']} parsed, {data['files_reused']} unchanged, {data['files_removed']} removed",
        markup=True,
    )
    console.print(f"  {data['symbols']} symbols, {data['imports']} imports, {data['calls']} calls")
    skipped = data["skipped_binary"] + data["skipped_non_utf8"]
    if skipped:
        console.print(f"  skipped {data['skipped_binary']} binary and {data['skipped_non_utf8']} non-UTF-8 files")
    for problem in data["parse_errors"]:
        console.print(
            f"  [yellow]could not parse[/] {escape(problem['path'])}: {escape(problem['message'])}",
            markup=True,
        )
    console.print(f"  knowledge graph: {data['graph_db']}")


def run_graph_query(settings: Settings, path: Path, symbol: str) -> dict[str, Any]:
    """Digest (incrementally) and answer definitions, callers and callees of `symbol`."""
    from dataclasses import asdict

    from diffusellm.pipeline.understand.digest.build import digest_repository
    from diffusellm.pipeline.understand.graph import KnowledgeGraph

    state = repo_state(settings.state_path(), path).ensure()
    digest_repository(path, state.graph_db)
    with KnowledgeGraph(state.graph_db) as graph:
        definitions = graph.definitions(symbol)
        if not definitions:
            raise InputError(
                f"no symbol named {symbol!r} in {path}",
                hint="use a qualified name such as pkg.module.function",
            )
        qualnames = sorted({d.qualname for d in definitions})
        return {
            "symbol": symbol,
            "definitions": [asdict(d) for d in definitions],
            "callers": [asdict(c) for q in qualnames for c in graph.callers(q)],
            "callees": sorted({c for q in qualnames for c in graph.callees(q)}),
        }


def print_graph_query(console: Console, data: dict[str, Any]) -> None:
    """Readable answer of a graph query."""
    console.print(f"[bold]{escape(data['symbol'])}[/]", markup=True)
    for title, rows in (("defined at", data["definitions"]), ("called by", data["callers"])):
        console.print(f"  {title}:")
        for row in rows:
            console.print(f"    {row['qualname']}  {row['path']}:{row['start_line']}")
    console.print("  calls:")
    for name in data["callees"]:
        console.print(f"    {name}")


def run_locate(settings: Settings, repo: Path, text_file: Path, top: int, include_tests: bool) -> dict[str, Any]:
    """Digest (incrementally), index and rank files and functions for an issue text."""
    from diffusellm.pipeline.locate.query import locate_command
    from diffusellm.pipeline.understand.digest.build import digest_repository

    if top < 1:
        raise InputError(f"--top must be at least 1, got {top}")
    state = repo_state(settings.state_path(), repo).ensure()
    digest_repository(repo, state.graph_db)
    return locate_command(repo, text_file, top, include_tests, settings.state_path())


def print_locate(console: Console, data: dict[str, Any]) -> None:
    """Readable ranking of files and functions."""
    console.print("[bold]files[/]", markup=True)
    for item in data["files"]:
        reasons = ", ".join(item["reasons"])
        console.print(f"  {item['score']:.3f}  {escape(item['path'])}  [dim]{escape(reasons)}[/]", markup=True)
    console.print("[bold]functions[/]", markup=True)
    for item in data["functions"]:
        console.print(f"  {item['score']:.3f}  {escape(item['qualname'])}  {item['path']}:{item['start_line']}")


def run_job(
    settings: Settings, spec_path: Path, repo: Path, base: str | None, phase: Callable[[str], None]
) -> dict[str, Any]:
    """Read the spec, run the pipeline in the sandbox, return the report as JSON data."""
    from diffusellm.pipeline.normalise.issue import read_issue_file
    from diffusellm.pipeline.runner import run_issue
    from diffusellm.worker.models import configured_models
    from diffusellm.worker.sandbox import sandbox_from_settings

    text = read_issue_file(spec_path)
    sandbox = sandbox_from_settings(settings, os.environ)
    report = run_issue(
        settings,
        text,
        repo,
        sandbox=sandbox,
        base=base,
        phase=phase,
        models=configured_models(settings),
        source=str(spec_path),
    )
    if settings.learn.record_outcomes:
        from diffusellm.learn.outcomes import OutcomeStore

        OutcomeStore.in_state(settings.state_path()).record(report)
    data = report.model_dump(mode="json")
    data["validation"]["passed"] = report.validation.passed
    return data


def print_run(console: Console, data: dict[str, Any]) -> None:
    """Readable summary of a run: branch, files, validation table."""

    for warning in data.get("warnings", []):
        console.print(f"[yellow]warning:[/] {escape(warning)}", markup=True)
    if data["branch"]:
        console.print(f"[bold green]branch[/] {data['branch']} at {data['commit'][:12]}", markup=True)
    else:
        why = data.get("question") or data.get("stopped_because") or "validation found new failures"
        console.print(f"[bold red]no branch created[/] ({data.get('status')}): {escape(str(why))}", markup=True)
    console.print(f"changed files ({len(data['changed_files'])}):")
    for path in data["changed_files"]:
        console.print(f"  {path}")
    console.print(validation_table(data["validation"]["checks"]))
    env = data["validation"].get("environment")
    if env:
        state = f"could not be built: {env['error']}" if env.get("error") else (
            "from the cache" if env.get("cache_hit") else f"built in {env.get('build_s', 0):.1f}s")
        console.print(f"environment: {escape(str(env.get('how')))} ({escape(str(env.get('python')))}, "
                      f"{env.get('packages', 0)} packages, {escape(state)})")
    for check in data["validation"]["checks"]:
        for failure in check["new_failures"][:20]:
            console.print(f"  [red]{check['name']}[/]: {escape(failure)}", markup=True)
    console.print(f"summary: {data['summary_path']}\npatch:   {data['patch_path']}")
