"""`diffusellm learn`: remembered runs, verdicts, training data and adapters from the command line."""


from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from diffusellm.cli.common import (
    ConfigOpt,
    JsonOpt,
    SetOpt,
    cli_settings,
    err_console,
    guard,
    out_console,
    repo_dir,
    server_url,
)

learn_app = typer.Typer(help="The learning loop: remembered runs, verdicts, training data, LoRA.", no_args_is_help=True)
RepoOpt = Annotated[Path, typer.Option("--repo", "-r", help="local git repository")]


def _learn(json_out: bool, config: Path | None, overrides: list[str] | None, work: Callable[[Path], Any],
           show: Callable[[Console, Any], None]) -> None:
    """Run a learn command on the state folder and print its result (JSON, or `show` for a person)."""
    result = guard(json_out, lambda: work(cli_settings(config, overrides).state_path()))
    if json_out:
        typer.echo(json.dumps(result, indent=2))
    else:
        show(out_console(), result)


@learn_app.command("status")
def learn_status(json_out: JsonOpt = False, config: ConfigOpt = None, overrides: SetOpt = None) -> None:
    """Runs remembered, by verdict; the latest ones; the adapters trained."""
    from diffusellm.cli.learn_view import print_status
    from diffusellm.learn.commands import status

    _learn(json_out, config, overrides, status, print_status)


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
    from diffusellm.cli.learn_view import print_outcomes
    from diffusellm.learn.commands import sync
    from diffusellm.models.settings import loaded_adapters
    from diffusellm.worker.remote import sync_server

    def work(state: Path) -> list[dict[str, Any]]:
        if server is not None:
            settings = cli_settings(config, overrides)
            token = os.environ.get(settings.server.worker_token_env, "")
            return sync_server(state, server_url(server), token, loaded_adapters(settings.llm))
        return sync(state, repo_dir(repo), into)

    def show(console: Console, items: list[dict[str, Any]]) -> None:
        print_outcomes(console, items, none="no run changed: nothing new was merged or decided")

    _learn(json_out, config, overrides, work, show)


@learn_app.command("accept")
def learn_accept(
    job: Annotated[str, typer.Argument(help="job id or branch name")],
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Mark a run's change as accepted by a person (training data)."""
    from diffusellm.cli.learn_view import print_verdict
    from diffusellm.learn.commands import set_verdict

    _learn(json_out, config, overrides, lambda state: set_verdict(state, job, "accepted"), print_verdict)


@learn_app.command("reject")
def learn_reject(
    job: Annotated[str, typer.Argument(help="job id or branch name")],
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Mark a run's change as rejected (never used for training)."""
    from diffusellm.cli.learn_view import print_verdict
    from diffusellm.learn.commands import set_verdict

    _learn(json_out, config, overrides, lambda state: set_verdict(state, job, "rejected"), print_verdict)


@learn_app.command("export")
def learn_export(
    out: Annotated[Path, typer.Argument(help="JSONL file to write")],
    repo: Annotated[Path | None, typer.Option("--repo", "-r", help="only this repository's runs")] = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Write the accepted runs' generated functions as chat JSONL fine-tuning data."""
    from diffusellm.cli.learn_view import print_export
    from diffusellm.learn.commands import export

    _learn(json_out, config, overrides, lambda state: export(state, repo_dir(repo) if repo else None, out),
           print_export)


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
    from diffusellm.cli.learn_view import print_train, training_progress
    from diffusellm.learn.commands import train

    def work() -> dict[str, Any]:
        settings = cli_settings(config, overrides)
        with training_progress(err_console(), settings.learn.lora.steps, not json_out) as progress:
            return train(settings, repo_dir(repo) if repo else None, data, out, progress=progress)

    result = guard(json_out, work)
    if json_out:
        typer.echo(json.dumps(result, indent=2))
    else:
        print_train(out_console(), result)


@learn_app.command("train-core")
def learn_train_core(json_out: JsonOpt = False, config: ConfigOpt = None, overrides: SetOpt = None) -> None:
    """Fit the predictor that picks the diffusion model or the LLM per job, from remembered runs."""
    from diffusellm.cli.learn_view import print_core
    from diffusellm.learn.commands import train_core

    def work(state: Path) -> dict[str, Any]:
        return train_core(state, cli_settings(config, overrides).learn.core_min_examples)

    _learn(json_out, config, overrides, work, print_core)
