"""Plainly stated refactors become specs without a model; anything vague is left to the model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from diffusellm.pipeline.locate.context import Localised, localise_by_overlap
from diffusellm.pipeline.normalise.rules import rule_spec
from diffusellm.pipeline.spec import AddParameter, MoveSymbol, RemoveParameter, RenameSymbol
from diffusellm.pipeline.understand.digest.build import digest_repository
from tests.conftest import git

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "taskboard"


@pytest.fixture(scope="module")
def taskboard(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("rules")
    repo = root / "taskboard"
    shutil.copytree(EXAMPLE, repo)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "Import taskboard")
    graph = root / "graph.sqlite"
    digest_repository(repo, graph)
    return repo, graph


def _loc(taskboard: tuple[Path, Path], text: str) -> Localised:
    return localise_by_overlap(taskboard[0], taskboard[1], text)


@pytest.mark.parametrize(
    ("issue", "expected"),
    [
        ("Please rename `get_verbose_flag` to `get_verbose_mode`: everywhere else we call it a mode.",
         RenameSymbol(op="rename_symbol", target="taskboard.helpers.get_verbose_flag", new_name="get_verbose_mode")),
        ("JsonStore.save should be called persist, to match the wording in the docs.",
         RenameSymbol(op="rename_symbol", target="taskboard.storage.JsonStore.save", new_name="persist")),
        ("The `legacy` argument of default_board_path has been ignored since 0.1.0. Remove it.",
         RemoveParameter(op="remove_parameter", target="taskboard.paths.default_board_path", name="legacy")),
        ("Please move `slugify` to module `taskboard.text`.",
         MoveSymbol(op="move_symbol", target="taskboard.helpers.slugify", to_module="taskboard.text")),
        ("resolve_root should accept a keyword-only `strict` flag (default False) so callers can demand a marker.",
         AddParameter(op="add_parameter", target="taskboard.paths.resolve_root", name="strict", default="False",
                      kind="keyword_only", annotation="bool")),
    ],
)
def test_plain_requests_become_specs(taskboard: tuple[Path, Path], issue: str, expected: object) -> None:
    spec = rule_spec(issue, _loc(taskboard, issue), "title")
    assert spec is not None and spec.operations == [expected]


@pytest.mark.parametrize(
    "issue",
    [
        "parse_due_date crashes with ValueError on an empty string; it should raise a clear error instead.",
        "Rename `no_such_function` to `other`.",
        "The legacy argument of default_board_path is documented badly.",
        "Please rename `get_verbose_flag` to `class`.",
    ],
)
def test_vague_or_unresolvable_requests_are_left_to_the_model(taskboard: tuple[Path, Path], issue: str) -> None:
    assert rule_spec(issue, _loc(taskboard, issue), "title") is None
