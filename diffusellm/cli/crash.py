"""The CLI's last resort: an unexpected exception becomes one line, a saved traceback and exit 2."""

from __future__ import annotations

import json
import os
import tempfile
import traceback

import typer
from rich.console import Console
from rich.markup import escape

from diffusellm.errors import EXIT_BAD_INPUT


def crash_log(exc: BaseException) -> str:
    """Write the traceback to a new file in the temporary folder; its path."""
    handle, path = tempfile.mkstemp(prefix="diffusellm-crash-", suffix=".log")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write("".join(traceback.format_exception(exc)))
    return path


def report_crash(exc: BaseException, as_json: bool) -> int:
    """Tell the user in one line what broke and where the traceback is; the exit code to use."""
    try:
        where = crash_log(exc)
    except OSError as err:
        where = f"(could not be saved: {err})"
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    message = f"unexpected {type(exc).__name__}: {first}" if first else f"unexpected {type(exc).__name__}"
    hint = f"this is a bug in diffusellm, nothing of yours was changed; the traceback is in {where}"
    if as_json:
        typer.echo(json.dumps({"error": message, "hint": hint, "exit_code": EXIT_BAD_INPUT}))
    Console(stderr=True, highlight=False).print(
        f"[bold red]error:[/] {escape(message)} ({escape(hint)})", markup=True, soft_wrap=True
    )
    return EXIT_BAD_INPUT
