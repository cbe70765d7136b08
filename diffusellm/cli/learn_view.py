"""What `diffusellm learn ...` prints for a person: tables and lines, paths never wrapped."""

from __future__ import annotations

from collections.abc import Callable, Generator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


def _outcome_row(item: dict[str, Any]) -> list[str]:
    where = item.get("branch") or item.get("job_id") or ""
    return [str(item.get("job_id") or ""), str(item.get("verdict") or "open"), str(item.get("status") or ""),
            str(where), ", ".join(item.get("operations") or [])]


def _outcomes_table(title: str, items: list[dict[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("job", "verdict", "status", "branch", "operations"):
        table.add_column(column, overflow="fold")
    for item in items:
        table.add_row(*_outcome_row(item))
    return table


def print_status(console: Console, data: dict[str, Any]) -> None:
    """Counts by verdict, the latest runs, the adapters trained."""
    counts: dict[str, int] = data.get("counts") or {}
    said = ", ".join(f"{n} {verdict}" for verdict, n in sorted(counts.items())) or "none yet"
    console.print(f"[bold]runs remembered:[/] {said}", markup=True)
    if data.get("outcomes"):
        console.print(_outcomes_table("latest runs", data["outcomes"]))
    adapters: list[dict[str, Any]] = data.get("adapters") or []
    if not adapters:
        console.print("adapters: none trained (`diffusellm learn train`)")
    for adapter in adapters:
        loss = ""
        if "first_loss" in adapter and "last_loss" in adapter:
            loss = f", loss {adapter['first_loss']} → {adapter['last_loss']}"
        examples = f"{adapter['examples']} examples" if "examples" in adapter else adapter.get("error", "")
        console.print(f"adapter: {adapter['adapter']} ({examples}{loss})")


def print_outcomes(console: Console, items: list[dict[str, Any]], *, none: str) -> None:
    """Runs a command changed (sync): a table, or `none` when there were none."""
    if not items:
        console.print(none)
        return
    console.print(_outcomes_table(f"{len(items)} run(s)", items))


def print_verdict(console: Console, item: dict[str, Any]) -> None:
    """One run after `learn accept` / `learn reject`."""
    console.print(f"{item.get('job_id')}: {item.get('verdict')} (branch {item.get('branch') or '-'})")


def print_export(console: Console, data: dict[str, Any]) -> None:
    """Where the training data went."""
    console.print(f"wrote {data['examples']} example(s) to {data['path']}")


def print_train(console: Console, data: dict[str, Any]) -> None:
    """The adapter trained and how to use it."""
    console.print(f"[bold green]adapter[/] {escape(str(data['adapter']))}", markup=True)
    console.print(f"  {data['examples']} example(s), {data['steps']} steps, loss {data['first_loss']} → "
                  f"{data['last_loss']}, {data['seconds']} s")
    console.print(f"  use it: {data['use_it']}")


def print_core(console: Console, data: dict[str, Any]) -> None:
    """The core predictor saved, with its examples per core."""
    console.print(f"[bold green]core predictor[/] {escape(str(data['predictor']))}", markup=True)
    runs_by_core: dict[str, int] = data.get("runs") or {}
    validated_by_core: dict[str, int] = data.get("validated") or {}
    for core, runs in sorted(runs_by_core.items()):
        validated = validated_by_core.get(core, 0)
        deciding = " (decides)" if core in (data.get("deciding") or []) else ""
        console.print(f"  {core}: {runs} run(s), {validated} validated{deciding}")


@contextmanager
def training_progress(console: Console, steps: int, enabled: bool) -> Generator[Callable[[int, float], None]]:
    """A progress bar over the optimiser steps with the latest loss (silent when not `enabled`)."""
    if not enabled:
        yield lambda _step, _loss: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        # Loading the model and tokenising the examples come before the first step (about a minute on CPU).
        task = bar.add_task("loading the model", total=steps, loss="-")

        def advance(step: int, loss: float) -> None:
            bar.update(task, description="training", completed=step, loss=f"{loss:.3f}")

        yield advance
