"""The one console command, `diffusellm`: a subcommand per job, human output by default, `--json` for machines."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Generator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import click
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from diffusellm.cli.crash import report_crash
from diffusellm.config import Settings, load_settings
from diffusellm.errors import EXIT_BAD_INPUT, DiffuseLLMError, InputError, RepositoryError
from diffusellm.log import configure_logging

T = TypeVar("T")
app = typer.Typer(
    name="diffusellm",
    no_args_is_help=True,
    add_completion=False,
    help="Self-hosted coding bot: turn a spec or an issue into a validated branch.",
)
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="config.yaml to read")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="override a setting: section.key=value (repeatable)"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print machine-readable JSON on stdout")]


def _console() -> Console:
    return Console(stderr=True, highlight=False)


def _settings(config: Path | None, overrides: list[str] | None) -> Settings:
    settings = load_settings(config, overrides or [])
    configure_logging(settings.log_level)
    return settings


def _emit_error(exc: DiffuseLLMError, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"error": exc.message, "hint": exc.hint, "exit_code": exc.exit_code}))
    console = _console()
    console.print(f"[bold red]error:[/] {escape(exc.message)}", markup=True, soft_wrap=True)
    if exc.hint:
        console.print(f"[yellow]hint:[/] {escape(exc.hint)}", markup=True, soft_wrap=True)


def _guard(as_json: bool, work: Callable[[], T]) -> T:
    """Run a command body; turn our errors into a message and the error's exit code."""
    try:
        return work()
    except DiffuseLLMError as exc:
        _emit_error(exc, as_json)
        raise typer.Exit(exc.exit_code) from None
    except (typer.Exit, typer.Abort, click.exceptions.Exit, click.exceptions.ClickException, click.exceptions.Abort):
        raise
    except Exception as exc:  # the last resort: one line and the traceback's file, never a traceback
        raise typer.Exit(report_crash(exc, as_json)) from None


def _repo_dir(path: Path) -> Path:
    if not path.exists():
        raise RepositoryError(f"path does not exist: {path}", hint="pass the folder of a git repository")
    if not path.is_dir():
        raise RepositoryError(f"not a folder: {path}", hint="pass the folder of a git repository")
    return path.resolve()


@contextmanager
def _phases(enabled: bool) -> Generator[Callable[[str], None]]:
    """A spinner that shows the current phase of a long job (silent under --json)."""
    if not enabled:
        yield lambda _: None
        return
    console = _console()
    with console.status("starting") as status:

        def phase(name: str) -> None:
            console.print(f"[dim]•[/] {name}", markup=True)
            status.update(name)

        yield phase


@app.command()
def profile(
    path: Annotated[Path, typer.Argument(help="repository to profile")],
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Infer the repository's style and write ruff.toml + naming_conventions.db to its state folder."""
    from diffusellm.cli.report import print_profile, run_profile

    result = _guard(json_out, lambda: run_profile(_settings(config, overrides), _repo_dir(path)))
    if json_out:
        typer.echo(json.dumps(result, indent=2))
    else:
        print_profile(Console(highlight=False), result)


@app.command()
def digest(
    path: Annotated[Path, typer.Argument(help="repository to digest")],
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Parse every Python file into the knowledge graph (incremental by git blob id)."""
    from diffusellm.cli.report import print_digest, run_digest

    result = _guard(json_out, lambda: run_digest(_settings(config, overrides), _repo_dir(path), not json_out))
    if json_out:
        typer.echo(json.dumps(result, indent=2))
    else:
        print_digest(Console(highlight=False), result)


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

    result = _guard(json_out, lambda: run_graph_query(_settings(config, overrides), _repo_dir(repo), symbol))
    if json_out:
        typer.echo(json.dumps(result, indent=2))
    else:
        print_graph_query(Console(highlight=False), result)


@app.command()
def run(
    spec_path: Annotated[Path, typer.Argument(metavar="SPEC", help="YAML spec, or Markdown with a ```yaml block")],
    repo: Annotated[Path, typer.Option("--repo", "-r", help="local git repository")] = Path("."),
    base: Annotated[str | None, typer.Option(help="commit, branch or tag to start from (default HEAD)")] = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Apply a spec on a new branch, validated in the sandbox; the checked-out branch is never touched."""
    from diffusellm.cli.report import print_run, run_job

    def work() -> dict[str, Any]:
        settings = _settings(config, overrides)
        with _phases(not json_out) as phase:
            return run_job(settings, spec_path, _repo_dir(repo), base, phase)

    result = _guard(json_out, work)
    if json_out:
        typer.echo(json.dumps(result, indent=2))
    else:
        print_run(Console(highlight=False), result)
    raise typer.Exit(_run_exit_code(result))


@app.command()
def demo(
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    overrides: SetOpt = None,
    keep: Annotated[bool, typer.Option(help="keep the demo repository and print where it is")] = True,
) -> None:
    """Run the shipped example spec end to end on the shipped example project (no network, no GPU)."""
    from diffusellm.cli.demo import run_demo
    from diffusellm.cli.report import print_run

    def work() -> dict[str, Any]:
        settings = _settings(config, overrides)
        with _phases(not json_out) as phase:
            return run_demo(settings, phase)

    result = _guard(json_out, work)
    if json_out:
        typer.echo(json.dumps(result, indent=2))
    else:
        console = Console(highlight=False)
        console.print(f"demo repository: [bold]{result['repo']}[/]", markup=True)
        print_run(console, result)
    raise typer.Exit(_run_exit_code(result))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to bind (default: server.host, localhost)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default: server.port, 5001)")] = None,
    config: ConfigOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Run the GitHub App: webhooks, worker API, health and metrics, with an in-process worker by default."""
    from diffusellm.app.main import build_app
    from diffusellm.app.server import serve as run_server

    def work() -> None:
        extra = [
            *(overrides or []),
            *([f"server.host={host}"] if host else []),
            *([f"server.port={port}"] if port is not None else []),
        ]
        settings = _settings(config, extra)
        run_server(build_app(settings), settings.server)

    _guard(False, work)


@app.command()
def worker(
    server: Annotated[
        str | None, typer.Option("--server", help="the app's base URL (default: worker.server_url)")
    ] = None,
    max_jobs: Annotated[int | None, typer.Option(help="exit after this many jobs")] = None,
    config: ConfigOpt = None,
) -> None:
    """Run a GPU worker that pulls jobs from the app over HTTP(S); it needs no inbound port."""
    from diffusellm.worker.remote import main as remote_main

    if config is not None:
        os.environ["DIFFUSELLM_CONFIG"] = str(config.resolve())
    url = server or _guard(False, lambda: _settings(config, [])).worker.server_url
    if not url:
        _emit_error(InputError("no server to pull jobs from"), False)
        _console().print("hint: pass --server URL or set worker.server_url", soft_wrap=True)
        raise typer.Exit(2)
    argv = ["--server", url, "--execute", "diffusellm.worker.execute:build_executor"]
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

    result = _guard(
        json_out, lambda: run_locate(_settings(config, overrides), _repo_dir(repo), text_file, top, include_tests)
    )
    if json_out:
        typer.echo(json.dumps(result, indent=2))
    else:
        print_locate(Console(highlight=False), result)


models_app = typer.Typer(help="Load, check and serve the configured models.", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("check")
def models_check(json_out: JsonOpt = False, config: ConfigOpt = None, overrides: SetOpt = None) -> None:
    """Load each configured model and print what it is, where it runs and its speed."""
    from diffusellm.models.check import check_models

    def work() -> list[dict[str, Any]]:
        settings = _settings(config, overrides)
        models = {"llm": settings.llm}
        models |= {"scorer": settings.scorer} if settings.scorer else {}
        models |= {"normaliser": settings.normaliser} if settings.normaliser else {}
        return check_models(models, settings.state_path())

    rows = _guard(json_out, work)
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
        Console(highlight=False).print(table)
    raise typer.Exit(1 if any(row.get("error") for row in rows) else 0)


@models_app.command("serve", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def models_serve(ctx: typer.Context) -> None:
    """Serve a transformers model over an OpenAI-compatible API (see --help of the server for flags)."""
    from diffusellm.models.serve import main as serve_main

    raise typer.Exit(serve_main(list(ctx.args)))


learn_app = typer.Typer(help="The learning loop: remembered runs, verdicts, training data, LoRA.", no_args_is_help=True)
app.add_typer(learn_app, name="learn")
RepoOpt = Annotated[Path, typer.Option("--repo", "-r", help="local git repository")]


def _learn(json_out: bool, config: Path | None, overrides: list[str] | None, work: Callable[[Path], Any]) -> None:
    """Run a learn command on the state folder and print its result (JSON, or a readable dump)."""
    result = _guard(json_out, lambda: work(_settings(config, overrides).state_path()))
    if json_out:
        typer.echo(json.dumps(result, indent=2))
    else:
        Console(highlight=False).print_json(json.dumps(result))


@learn_app.command("status")
def learn_status(json_out: JsonOpt = False, config: ConfigOpt = None, overrides: SetOpt = None) -> None:
    """Runs remembered, by verdict; the latest ones; the adapters trained."""
    from diffusellm.learn.commands import status

    _learn(json_out, config, overrides, status)


@learn_app.command("sync")
def learn_sync(
    repo: RepoOpt = Path("."),
    into: Annotated[str | None, typer.Option(help="branch merged into (default: the checked-out one)")] = None,
    server: Annotated[
        str | None, typer.Option(help="on a GitHub worker: take the verdicts the app recorded (its base URL)")
    ] = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Accept the runs whose branches were merged (local), or take the app's verdicts (--server)."""
    from diffusellm.learn.commands import sync
    from diffusellm.worker.remote import sync_server

    def work(state: Path) -> list[dict[str, Any]]:
        if server is not None:
            token_env = _settings(config, overrides).server.worker_token_env
            return sync_server(state, server, os.environ.get(token_env, ""))
        return sync(state, _repo_dir(repo), into)

    _learn(json_out, config, overrides, work)


@learn_app.command("accept")
def learn_accept(
    job: Annotated[str, typer.Argument(help="job id or branch name")],
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Mark a run's change as accepted by a person (training data)."""
    from diffusellm.learn.commands import set_verdict

    _learn(json_out, config, overrides, lambda state: set_verdict(state, job, "accepted"))


@learn_app.command("reject")
def learn_reject(
    job: Annotated[str, typer.Argument(help="job id or branch name")],
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Mark a run's change as rejected (never used for training)."""
    from diffusellm.learn.commands import set_verdict

    _learn(json_out, config, overrides, lambda state: set_verdict(state, job, "rejected"))


@learn_app.command("export")
def learn_export(
    out: Annotated[Path, typer.Argument(help="JSONL file to write")],
    repo: Annotated[Path | None, typer.Option("--repo", "-r", help="only this repository's runs")] = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Write the accepted runs' generated functions as chat JSONL fine-tuning data."""
    from diffusellm.learn.commands import export

    _learn(json_out, config, overrides, lambda state: export(state, _repo_dir(repo) if repo else None, out))


@learn_app.command("train")
def learn_train(
    repo: Annotated[Path | None, typer.Option("--repo", "-r", help="only this repository's accepted runs")] = None,
    data: Annotated[Path | None, typer.Option(help="or on a chat JSONL file (see `learn export`)")] = None,
    out: Annotated[Path | None, typer.Option(help="adapter folder (default: <state>/learn/adapters/<time>)")] = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Train a LoRA adapter for the `llm` model (settings: learn.lora) and print how to use it."""
    from diffusellm.learn.commands import train

    def work() -> dict[str, Any]:
        return train(_settings(config, overrides), _repo_dir(repo) if repo else None, data, out)

    result = _guard(json_out, work)
    if json_out:
        typer.echo(json.dumps(result, indent=2))
    else:
        Console(highlight=False).print_json(json.dumps(result))


@learn_app.command("train-core")
def learn_train_core(json_out: JsonOpt = False, config: ConfigOpt = None, overrides: SetOpt = None) -> None:
    """Fit the predictor that picks the diffusion model or the LLM per job, from remembered runs."""
    from diffusellm.learn.commands import train_core

    def work(state: Path) -> dict[str, Any]:
        return train_core(state, _settings(config, overrides).learn.core_min_examples)

    _learn(json_out, config, overrides, work)


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
    except Exception as exc:  # raised outside a command's guard (option parsing, settings)
        sys.exit(report_crash(exc, "--json" in sys.argv))
    except KeyboardInterrupt:
        sys.exit(EXIT_BAD_INPUT)
