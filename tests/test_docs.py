"""The docs match the code: every `diffusellm ...` command and option they name exists (its --help
says so), and every route they name is served (ours, the models server's, or GitHub's own API)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any, cast

import pytest
import typer.main
from starlette.routing import Match
from typer.testing import CliRunner

from diffusellm.app.main import build_app
from diffusellm.app.settings import StoreSettings
from diffusellm.cli.main import app as cli_app
from diffusellm.config import Settings
from diffusellm.models.serve import create_app as models_app
from tests.fakes.openapi_check import OpenApiContract

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_INLINE = re.compile(r"(`+)(.+?)\1")
# `diffusellm` as a command: at the start of code, after a space, a `$ `, or a venv's bin/ (not a
# branch diffusellm/..., a module diffusellm.x, or the GitHub comment command /diffusellm).
_COMMAND = re.compile(r"(?:^|(?<=[\s(])|(?<=bin/))diffusellm((?:[ \t]+[^\s|;&#)`]+)*)", re.M)
_ROUTE = re.compile(r"\b(GET|POST|PUT|PATCH|DELETE) (/[^\s`|),?]*)")


def _code_spans() -> list[tuple[str, str]]:
    """(doc, code) for each line of a fenced block and each inline code span."""
    spans: list[tuple[str, str]] = []
    for doc in DOCS:
        fenced = False
        for line in doc.read_text(encoding="utf-8").splitlines():
            if line.lstrip().startswith("```"):
                fenced = not fenced
                continue
            if fenced:
                spans.append((doc.name, line))
            else:
                spans += [(doc.name, m.group(2)) for m in _INLINE.finditer(line)]
    return spans


def _commands() -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    """(doc, command path, options) for every `diffusellm ...` named in a code span or block."""
    root: Any = typer.main.get_command(cli_app)
    found: set[tuple[str, tuple[str, ...], tuple[str, ...]]] = set()
    for doc, code in _code_spans():
        for match in _COMMAND.finditer(code):
            words = match.group(1).split()
            path: list[str] = []
            group: Any = root
            while words and hasattr(group, "commands") and not words[0].startswith("-"):
                if words[0] not in group.commands:
                    break
                path.append(words.pop(0))
                group = group.commands[path[-1]]
            options = tuple(sorted({w.strip("[]()").split("=")[0] for w in words if w.strip("[]()").startswith("--") and w != "--help"}))
            if path or options:
                found.add((doc, tuple(path), options))
    return sorted(found)


@cache
def _help(path: tuple[str, ...]) -> str:
    done = CliRunner().invoke(cli_app, [*path, "--help"], env={"COLUMNS": "200"})
    assert done.exit_code == 0, f"diffusellm {' '.join(path)} --help: {done.output}"
    return done.output


def test_the_docs_name_commands() -> None:
    named = {path for _, path, _ in _commands()}
    assert {("run",), ("serve",), ("worker",), ("learn", "train")} <= named


@pytest.mark.parametrize("doc, path, options", _commands())
def test_each_command_and_option_the_docs_name_exists(doc: str, path: tuple[str, ...],
                                                      options: tuple[str, ...]) -> None:
    assert path, f"{doc} names `diffusellm` with options but no command: {options}"
    text = _help(path)
    missing = [o for o in options if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", text)]
    assert missing == [], f"{doc}: `diffusellm {' '.join(path)}` has no {missing}"


def _path_key(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path.rstrip("/"))


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("docs-app")
    settings = Settings(state_dir=folder / "state", store=StoreSettings(url=f"sqlite:///{folder / 'jobs.sqlite'}"))
    return {"the app": build_app(settings, {"WEBHOOK_SECRET": "s", "DIFFUSELLM_ADMIN_TOKEN": "a"}),
            "models serve": models_app(cast(Any, None), model_name="m")}


@cache
def _github() -> set[tuple[str, str]]:
    return {(op.method, _path_key(op.template)) for op in OpenApiContract().operations}


def _serves(app: Any, method: str, path: str) -> bool:
    scope: dict[str, Any] = {"type": "http", "method": method, "path": path, "root_path": "", "headers": [],
                             "query_string": b""}
    return any(route.matches(scope)[0] is Match.FULL for route in app.router.routes)


def _routes() -> list[tuple[str, str, str]]:
    return sorted({(doc, m, p) for doc, code in _code_spans() for m, p in _ROUTE.findall(code)})


@pytest.mark.parametrize("doc, method, path", _routes())
def test_each_route_the_docs_name_is_served(apps: dict[str, Any], doc: str, method: str, path: str) -> None:
    concrete = re.sub(r"\{[^}]*\}", "x1", path)
    # The worker API's table names its routes relative to /api/worker.
    where = [name for name, app in apps.items()
             if _serves(app, method, concrete) or _serves(app, method, "/api/worker" + concrete)]
    where += ["GitHub"] if (method, _path_key(path)) in _github() else []
    assert where, f"{doc}: `{method} {path}` is served by neither the app, the models server nor GitHub"


def test_run_help_says_a_free_text_issue_is_accepted() -> None:
    assert "free-text issue" in _help(("run",))
