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
    sources: dict[str, str] = data.get("sources", {})

    def source(fact: str) -> str:
        return f"  (from {sources[fact]})" if fact in sources else "  (measured)"

    changelog = data["changelog"]
    test = data.get("test_command")
    rows = [
        ("indent", data["indent"] + source("indent")),
        ("quotes", data["quote_style"] + source("quote_style")),
        ("line length", str(data["line_length"]) + source("line_length")),
        ("docstrings", data["docstring_style"]),
        ("commits", data["commit_convention"]),
        ("changelog", changelog["format"] + (f" {changelog['path']}" if changelog.get("path") else "")),
        ("tests", f"{test['value']}  (from {test['source']})" if test else "not declared"),
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
    return locate_command(repo, text_file, top, include_tests, settings.state_path(), settings.generation.locate)


def print_locate(console: Console, data: dict[str, Any]) -> None:
    """Readable ranking of files and functions."""
    console.print("[bold]files[/]", markup=True)
    for item in data["files"]:
        reasons = ", ".join(item["reasons"])
        console.print(f"  {item['score']:.3f}  {escape(item['path'])}  [dim]{escape(reasons)}[/]", markup=True)
    console.print("[bold]functions[/]", markup=True)
    for item in data["functions"]:
        console.print(f"  {item['score']:.3f}  {item['qualname']}  {item['path']}:{item['start_line']}")


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
        console.print(f"[bold green]branch[/] {escape(data['branch'])} at {data['commit'][:12]}", markup=True)
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
        console.print(f"environment: {env.get('how')} ({env.get('python')}, {env.get('packages', 0)} packages, "
                      f"{state})")
    for check in data["validation"]["checks"]:
        for failure in check["new_failures"][:20]:
            console.print(f"  [red]{check['name']}[/]: {escape(failure)}", markup=True)
    console.print(f"summary: {data['summary_path']}\npatch:   {data['patch_path']}")


def run_plan(
    settings: Settings, issue_path: Path, repo: Path, base: str | None, phase: Callable[[str], None]
) -> dict[str, Any]:
    """The dry run: what the bot would do with an issue (spec or question, plan, located code), changing
    nothing: the same reading as `/diffusellm plan`, in a throwaway worktree that is removed after."""
    from diffusellm.pipeline.normalise.issue import read_issue_file
    from diffusellm.pipeline.runner import run_issue
    from diffusellm.worker.models import configured_models
    from diffusellm.worker.sandbox import sandbox_from_settings

    text = read_issue_file(issue_path)
    sandbox = sandbox_from_settings(settings, os.environ)
    models = configured_models(settings)
    report = run_issue(
        settings, text, repo, sandbox=sandbox, base=base, phase=phase, models=models, source=str(issue_path),
        plan_only=True,
    )
    spec = report.spec.model_dump(mode="json", exclude_none=True) if report.spec is not None else None
    plan = report.plan.model_dump(mode="json", exclude_none=True) if report.plan is not None else None
    located = report.located.model_dump(mode="json") if report.located is not None else None
    return {
        "status": report.status,
        "spec": spec,
        "plan": plan,
        "question": report.question,
        "located": located,
        "repo": report.repo,
        "base_commit": report.base_commit,
        "summary_path": report.summary_path,
    }


def _operation_line(op: dict[str, Any]) -> str:
    values = ", ".join(f"{k}={v!r}" for k, v in op.items() if k not in ("op", "target") and v not in (None, False))
    return f"{op['op']} {op['target']}" + (f" ({values})" if values else "")


def print_plan(console: Console, data: dict[str, Any]) -> None:
    """Readable dry run: the spec or the question, the plan, the located code; nothing was changed."""
    spec, plan = data["spec"], data["plan"]
    if data["question"]:
        console.print(f"[bold yellow]question[/] the bot would ask:\n  {escape(data['question'])}", markup=True)
    if spec is not None:
        console.print(f"[bold]spec[/] {escape(spec['title'])}", markup=True)
        for op in spec["operations"]:
            console.print(f"  - {escape(_operation_line(op))}", markup=True)
    if plan is not None:
        console.print(f"[bold]plan[/] (from the {plan['origin']}, score {plan['score']:.3f})", markup=True)
        for op in plan["operations"]:
            console.print(f"  - {escape(_operation_line(op))}", markup=True)
        if plan.get("rationale"):
            console.print(f"  why: {escape(plan['rationale'])}", markup=True)
        for reason in plan.get("approval_reasons", []):
            console.print(f"  [yellow]needs approval:[/] {escape(reason)}", markup=True)
    located: dict[str, list[dict[str, Any]]] = data["located"] or {"files": [], "functions": []}
    console.print("[bold]located files[/]", markup=True)
    for item in located["files"]:
        console.print(f"  {escape(item['path'])}  [dim]{escape(', '.join(item['reasons']))}[/]", markup=True)
    console.print("[bold]located functions[/]", markup=True)
    for item in located["functions"]:
        where = f"{item['path']}:{item['line']}"
        reasons = escape(", ".join(item["reasons"]))
        console.print(f"  {escape(item['qualname'])}  {escape(where)}  [dim]{reasons}[/]", markup=True)
    console.print("[dim]dry run: nothing was changed in the repository[/]", markup=True)
