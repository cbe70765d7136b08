"""CLI ground every command shares: options, settings, consoles, error exits, phase progress."""


from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Generator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, TypeVar
from urllib.parse import urlsplit

import click
import typer
from pydantic_settings import SettingsError
from rich.console import Console
from rich.markup import escape
from rich.progress import TaskID

from diffusellm.cli.crash import report_crash
from diffusellm.config import Settings, load_settings
from diffusellm.errors import ConfigError, DiffuseLLMError, InputError, RepositoryError
from diffusellm.log import configure_logging

T = TypeVar("T")
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="config.yaml to read")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="override a setting: section.key=value (repeatable)"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print machine-readable JSON on stdout")]
VerboseOpt = Annotated[
    bool, typer.Option("--verbose", "-v", help="also show library warnings and model-loading progress bars")
]


def err_console() -> Console:
    """stderr for a person; like `out_console`, markup only where a print asks for it."""
    return Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


def out_console() -> Console:
    """stdout for a person: lines are never wrapped (a path stays whole to copy and paste), and text is
    printed as it is (a path such as `[/tmp/x]` is no markup) unless a print passes `markup=True`."""
    return Console(highlight=False, soft_wrap=True, markup=False)


def cli_settings(config: Path | None, overrides: list[str] | None) -> Settings:
    try:
        settings = load_settings(config, overrides or [])
    except SettingsError as exc:  # an environment variable that is not valid JSON for its section
        raise ConfigError(f"settings from the environment could not be read: {exc}",
                          hint="check the DIFFUSELLM_* variables (a section such as DIFFUSELLM_SERVER must "
                               "be JSON; set one key with DIFFUSELLM_SECTION__KEY)") from None
    configure_logging(settings.log_level)
    return settings


def server_url(url: str) -> str:
    """The app's base URL, refused with exit 2 unless it is http(s)://host[:port][/path]."""
    parts = urlsplit(url.strip())
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise InputError(f"not a server URL: {url!r}",
                         hint="give the app's base URL, e.g. https://bot.example.org or http://127.0.0.1:5001")
    return url.strip()


def emit_error(exc: DiffuseLLMError, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"error": exc.message, "hint": exc.hint, "exit_code": exc.exit_code}))
    console = err_console()
    console.print(f"[bold red]error:[/] {escape(exc.message)}", markup=True, soft_wrap=True)
    if exc.hint:
        console.print(f"[yellow]hint:[/] {escape(exc.hint)}", markup=True, soft_wrap=True)


def guard(as_json: bool, work: Callable[[], T]) -> T:
    """Run a command body; turn our errors into a message and the error's exit code, and anything
    unexpected into one line, a saved traceback and exit 2 (`crash`)."""
    try:
        return work()
    except DiffuseLLMError as exc:
        emit_error(exc, as_json)
        raise typer.Exit(exc.exit_code) from None
    except (typer.Exit, typer.Abort, click.exceptions.Exit, click.exceptions.ClickException, click.exceptions.Abort):
        raise
    except Exception as exc:  # the last resort: never a traceback on the user's terminal
        raise typer.Exit(report_crash(exc, as_json)) from None


def repo_dir(path: Path) -> Path:
    if not path.exists():
        raise RepositoryError(f"path does not exist: {path}", hint="pass the folder of a git repository")
    if not path.is_dir():
        raise RepositoryError(f"not a folder: {path}", hint="pass the folder of a git repository")
    return path.resolve()


@contextmanager
def phases(enabled: bool) -> Generator[Callable[[str], None]]:
    """Phase progress on stderr: each phase with its elapsed time, the current one spinning (silent
    under --json)."""
    if not enabled:
        yield lambda _: None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(finished_text="[green]✓[/]"), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=err_console()) as bar:
        current: list[TaskID] = []

        def phase(name: str) -> None:
            if current:
                bar.update(current[-1], total=1, completed=1)
            current.append(bar.add_task(name, total=None))

        yield phase
        if current:
            bar.update(current[-1], total=1, completed=1)


def quiet_libraries(verbose: bool) -> None:
    """Keep model libraries' warnings and download/loading progress bars out of the output unless
    --verbose; they are read when the libraries are first imported, which the CLI does lazily."""
    if verbose:
        return
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")  # plain tqdm bars, e.g. transformers' GGUF de-quantising
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore")
