"""The one console command, `diffusellm`: a subcommand per job, human output by default, `--json` for machines."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from diffusellm.cli.common import (
    ConfigOpt,
    JsonOpt,
    SetOpt,
    VerboseOpt,
    cli_settings,
    emit_error,
    err_console,
    guard,
    out_console,
    phases,
    quiet_libraries,
    repo_dir,
    server_url,
)
from diffusellm.cli.crash import report_crash
from diffusellm.cli.learn import learn_app
from diffusellm.config import Settings
from diffusellm.errors import EXIT_BAD_INPUT, DiffuseLLMError, InputError

app = typer.Typer(
    name="diffusellm",
    no_args_is_help=True,
    add_completion=False,
    help="Self-hosted coding bot: turn a spec or an issue into a validated branch.",
)
app.add_typer(learn_app, name="learn")


@app.command()
def profile(
    path: Annotated[Path, typer.Argument(help="repository to profile")],
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Infer the repository's style and write ruff.toml + naming_conventions.db to its state folder."""
    from diffusellm.cli.report import print_profile, run_profile

    result = guard(json_out, lambda: run_profile(cli_settings(config, overrides), repo_dir(path)))
    if json_out:
        typer.echo(json.dumps(result, indent=2))
    else:
        print_profile(out_console(), result)


@app.command()
def digest(
    path: Annotated[Path, typer.Argument(help="repository to digest")],
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Parse every Python file into the knowledge graph (incremental by git blob id)."""
    from diffusellm.cli.report import print_digest, run_digest

    result = guard(json_out, lambda: run_digest(cli_settings(config, overrides), repo_dir(path), not json_out))
    if json_out:
        typer.echo(json.dumps(result, indent=2))
    else:
        print_digest(out_console(), result)


@app.command("query-graph")
def query_graph(
    symbol: Annotated[str, typer.Argument(help="qualified or bare name, e.g. pkg.mod.func or func")],
    repo: Annotated[Path, typer.Option("--repo", "-r", help="repository (digested first if needed)")] = Path("."),
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Definitions, callers and callees of a symbol from the knowledge graph."""
    from diffusellm.cli.report import print_graph_query, run_graph_query

    result = guard(json_out, lambda: run_graph_query(cli_settings(config, overrides), repo_dir(repo), symbol))
    if json_out:
        typer.echo(json.dumps(result, indent=2))
    else:
        print_graph_query(out_console(), result)


@app.command()
def run(
    spec_path: Annotated[
        Path, typer.Argument(metavar="SPEC", help="YAML spec, Markdown with a ```yaml block, or a free-text issue")
    ],
    repo: Annotated[Path, typer.Option("--repo", "-r", help="local git repository")] = Path("."),
    base: Annotated[str | None, typer.Option(help="commit, branch or tag to start from (default HEAD)")] = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    overrides: SetOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Apply a spec on a new branch, validated in the sandbox; the checked-out branch is never touched."""
    from diffusellm.cli.report import print_run, run_job

    result = _pipeline_command(
        lambda settings, phase: run_job(settings, spec_path, repo_dir(repo), base, phase),
        print_run, json_out=json_out, verbose=verbose, config=config, overrides=overrides)
    raise typer.Exit(_run_exit_code(result))


PhaseJob = Callable[[Settings, Callable[[str], None]], dict[str, Any]]


def _pipeline_command(job: PhaseJob, show: Callable[[Console, dict[str, Any]], None], *, json_out: bool,
                      verbose: bool, config: Path | None, overrides: list[str] | None) -> dict[str, Any]:
    """`run` and `plan`: settings, phase progress on stderr, errors as one line, then JSON or the person's view."""
    def work() -> dict[str, Any]:
        quiet_libraries(verbose)
        settings = cli_settings(config, overrides)
        with phases(not json_out) as phase:
            return job(settings, phase)

    result = guard(json_out, work)
    if json_out:
        typer.echo(json.dumps(result, indent=2))
    else:
        show(out_console(), result)
    return result


@app.command()
def plan(
    issue: Annotated[Path, typer.Argument(metavar="ISSUE", help="the issue's text (Markdown), or a YAML spec")],
    repo: Annotated[Path, typer.Option("--repo", "-r", help="local git repository")] = Path("."),
    base: Annotated[str | None, typer.Option(help="commit, branch or tag to read (default HEAD)")] = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    overrides: SetOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Dry run: the spec the issue becomes (or the question), the plan and the code it points at; changes nothing."""
    from diffusellm.cli.report import print_plan, run_plan

    result = _pipeline_command(
        lambda settings, phase: run_plan(settings, issue, repo_dir(repo), base, phase),
        print_plan, json_out=json_out, verbose=verbose, config=config, overrides=overrides)
    raise typer.Exit(2 if result["question"] else 0)


@app.command()
def demo(
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    overrides: SetOpt = None,
    keep: Annotated[bool, typer.Option(help="keep the demo repository and print where it is")] = True,
    verbose: VerboseOpt = False,
) -> None:
    """The example spec, then a plain-words example issue, end to end on the example project (no GPU)."""
    from diffusellm.cli.demo import demo_exit_code, print_demo, run_demo

    def work() -> dict[str, Any]:
        quiet_libraries(verbose)
        settings = cli_settings(config, overrides)
        with phases(not json_out) as phase:
            return run_demo(settings, phase)

    result = guard(json_out, work)
    if json_out:
        typer.echo(json.dumps(result, indent=2))
    else:
        print_demo(out_console(), result)
    raise typer.Exit(demo_exit_code(result))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to bind (default: server.host, localhost)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default: server.port, 5001)")] = None,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(help="comma-separated reverse proxy addresses whose X-Forwarded-* headers are "
                     "believed (default: server.forwarded_allow_ips, none)"),
    ] = None,
    config: ConfigOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Run the GitHub App: webhooks, worker API, health and metrics, with an in-process worker by default."""
    from diffusellm.app.main import build_app
    from diffusellm.app.server import serve as run_server

    def work() -> None:
        proxies = [p.strip() for p in (forwarded_allow_ips or "").split(",") if p.strip()]
        extra = [
            *(overrides or []),
            *([f"server.host={host}"] if host else []),
            *([f"server.port={port}"] if port is not None else []),
            *([f"server.forwarded_allow_ips={json.dumps(proxies)}"] if forwarded_allow_ips is not None else []),
        ]
        settings = cli_settings(config, extra)
        run_server(build_app(settings), settings.server)

    guard(False, work)


@app.command()
def worker(
    server: Annotated[
        str | None, typer.Option("--server", help="the app's base URL (default: worker.server_url)")
    ] = None,
    max_jobs: Annotated[int | None, typer.Option(help="exit after this many jobs")] = None,
    config: ConfigOpt = None,
) -> None:
    """Run a GPU worker that pulls jobs from the app over HTTP(S); it needs no inbound port."""
    from diffusellm.models.settings import loaded_adapters
    from diffusellm.worker.remote import main as remote_main

    if config is not None:
        os.environ["DIFFUSELLM_CONFIG"] = str(config.resolve())
    full = guard(False, lambda: cli_settings(config, []))
    settings = full.worker
    url = server or settings.server_url
    if not url:
        emit_error(InputError("no server to pull jobs from"), False)
        err_console().print("hint: pass --server URL or set worker.server_url", soft_wrap=True)
        raise typer.Exit(2)
    checked = url
    url = guard(False, lambda: server_url(checked))
    argv = ["--server", url, "--execute", "diffusellm.worker.execute:build_executor",
            "--state-dir", str(full.state_path()), *(f"--adapter={a}" for a in loaded_adapters(full.llm)),
            *(["--allow-plain-http"] if settings.allow_plain_http else [])]
    raise typer.Exit(remote_main([*argv, *(["--max-jobs", str(max_jobs)] if max_jobs else [])]))


@app.command()
def locate(
    text_file: Annotated[Path, typer.Option("--text-file", help="issue text (Markdown or plain)")],
    repo: Annotated[Path, typer.Option("--repo", "-r", help="repository")] = Path("."),
    top: Annotated[int, typer.Option(help="how many files and functions")] = 10,
    include_tests: Annotated[bool, typer.Option("--include-tests", help="rank test files too")] = False,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Rank the files and functions an issue is about (BM25 + embeddings + call graph)."""
    from diffusellm.cli.report import print_locate, run_locate

    result = guard(
        json_out, lambda: run_locate(cli_settings(config, overrides), repo_dir(repo), text_file, top, include_tests)
    )
    if json_out:
        typer.echo(json.dumps(result, indent=2))
    else:
        print_locate(out_console(), result)


models_app = typer.Typer(help="Load, check and serve the configured models.", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("check")
def models_check(json_out: JsonOpt = False, config: ConfigOpt = None, overrides: SetOpt = None) -> None:
    """Load each configured model and print what it is, where it runs and its speed."""
    from diffusellm.models.check import check_models

    def work() -> list[dict[str, Any]]:
        settings = cli_settings(config, overrides)
        models = {"llm": settings.llm}
        models |= {"scorer": settings.scorer} if settings.scorer else {}
        models |= {"normaliser": settings.normaliser} if settings.normaliser else {}
        return check_models(models, settings.state_path())

    rows = guard(json_out, work)
    if json_out:
        typer.echo(json.dumps(rows, indent=2))
    else:
        table = Table(title="models")
        for column in ("role", "model", "backend", "device", "dtype", "load s", "tokens/s", "error"):
            table.add_column(column)
        for row in rows:
            cells = [row.get(k) for k in ("role", "name", "backend", "device", "dtype", "load_s", "tokens_per_s")]
            table.add_row(
                *[f"{c:.2f}" if isinstance(c, float) else str(c or "") for c in cells], str(row.get("error") or "")
            )
        out_console().print(table)
    raise typer.Exit(1 if any(row.get("error") for row in rows) else 0)


@models_app.command("serve", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def models_serve(ctx: typer.Context) -> None:
    """Serve a transformers model over an OpenAI-compatible API (see --help of the server for flags)."""
    from diffusellm.models.serve import main as serve_main

    raise typer.Exit(serve_main(list(ctx.args)))


def _run_exit_code(result: dict[str, Any]) -> int:
    """0 only when the change succeeded; 2 when the bot needs input; 1 for every other stop."""
    status = result.get("status")
    if status == "succeeded":
        return 0
    return 2 if status == "needs_clarification" else 1


def main() -> None:
    """Console entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(EXIT_BAD_INPUT)
    except DiffuseLLMError as exc:  # raised outside a command's own guard
        emit_error(exc, False)
        sys.exit(exc.exit_code)
    except Exception as exc:  # raised outside a command's guard (option parsing, settings)
        sys.exit(report_crash(exc, "--json" in sys.argv))
