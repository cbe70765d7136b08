"""Findings follow their code: keyed by the enclosing definition, mapped through moves and renames."""

from __future__ import annotations

from pathlib import Path

import pytest

from diffusellm.pipeline.validate.findings import Finding, new_findings
from diffusellm.pipeline.validate.report import ValidationReport
from diffusellm.pipeline.validate.sandbox import BubblewrapSandbox
from diffusellm.pipeline.validate.settings import ValidationSettings
from diffusellm.pipeline.validate.symbols import keyed_by_symbol, moved_back
from tests.pipeline.validate.test_checks import check, make_head, make_repo, needs_bwrap, write_tree

MESSY = '''\
class Box:
    @staticmethod
    def helper() -> int:
        unused = 1
        return 2
'''


def ruff(path: str, row: int) -> Finding:
    message = "Local variable `unused` is assigned to but never used"
    return Finding(("ruff", path, "F841", message), f"{path}:{row}: F841 {message}", path, row)


def test_a_finding_is_keyed_by_its_enclosing_definition(tmp_path: Path) -> None:
    write_tree(tmp_path, {"pkg/__init__.py": "", "pkg/core.py": "import os\n\n\n" + MESSY})
    keyed = keyed_by_symbol([ruff("pkg/core.py", 7), ruff("pkg/core.py", 1)], tmp_path)
    assert [f.key[1] for f in keyed] == ["pkg.core.Box.helper", "pkg.core"]
    assert keyed[0].line == "pkg/core.py:7: F841 Local variable `unused` is assigned to but never used"


def test_a_moved_or_renamed_definition_keeps_its_old_findings_old(tmp_path: Path) -> None:
    write_tree(tmp_path / "base", {"pkg/__init__.py": "", "pkg/core.py": MESSY})
    write_tree(tmp_path / "head", {"pkg/__init__.py": "", "pkg/core.py": "", "pkg/boxes.py": "\n\n" + MESSY})
    base = keyed_by_symbol([ruff("pkg/core.py", 4)], tmp_path / "base")
    head = keyed_by_symbol([ruff("pkg/boxes.py", 6)], tmp_path / "head")
    assert new_findings(base, head) == [head[0].line]  # by path or symbol alone it looks new
    moves = {"pkg.boxes.Box": "pkg.core.Box"}
    assert new_findings(base, head, moved=lambda key: moved_back(key, moves)) == []
    renamed = keyed_by_symbol([ruff("pkg/boxes.py", 6)], tmp_path / "head")
    respelled = [Finding((k[0], k[1].replace("Box", "Crate"), *k[2:]), f.line) for f in renamed for k in [f.key]]
    assert new_findings(base, respelled, {"Crate": "Box"}, lambda key: moved_back(key, moves)) == []


def test_an_import_line_carried_by_a_move_keeps_its_old_finding_old() -> None:
    def deprecated(path: str, row: int, module: str) -> Finding:
        message = "Import from `collections.abc` instead: `Iterable`"
        return Finding(("ruff", module, "UP035", message), f"{path}:{row}: UP035 {message}", path, row)

    # the source's line imports more names, so its message names more: the code is what counts
    source = deprecated("pkg/util.py", 1, "pkg.util")
    source = Finding((*source.key[:3], source.key[3] + ", `Callable`"), source.line, "pkg/util.py", 1)
    base = [source, deprecated("pkg/meta.py", 1, "pkg.meta")]
    head = [source, deprecated("pkg/meta.py", 1, "pkg.meta"),
            deprecated("pkg/meta.py", 2, "pkg.meta")]  # the moved function's import, now in meta too
    moves = {"pkg.meta.check": "pkg.util.check"}
    assert new_findings(base, head) == [head[2].line]
    assert new_findings(base, head, moved=lambda key: moved_back(key, moves)) == []
    # a finding the source module never had is new in the destination
    other = Finding(("ruff", "pkg.meta", "F401", "`os` imported but unused"), "pkg/meta.py:3: F401 os",
                    "pkg/meta.py", 3)
    assert new_findings(base, [*head, other], moved=lambda key: moved_back(key, moves)) == [other.line]
    # a module the move did not write to gets nothing carried over
    assert new_findings(base, [*base, deprecated("pkg/other.py", 1, "pkg.other")],
                        moved=lambda key: moved_back(key, moves)) == [
        "pkg/other.py:1: UP035 Import from `collections.abc` instead: `Iterable`"]


@needs_bwrap
@pytest.mark.timeout(300)
def test_moving_a_function_with_old_ruff_findings_passes(tmp_path: Path) -> None:
    from diffusellm.pipeline.validate.checks import validate_change

    base = make_repo(tmp_path, {"pkg/core.py": "def helper() -> int:\n    unused = 1\n    return 2\n"})
    head = make_head(base, tmp_path, {
        "pkg/core.py": "", "pkg/util.py": "\n\ndef helper() -> int:\n    unused = 1\n    return 2\n"})
    settings = ValidationSettings(pyright=False, pytest=False, require=[])

    def run(moves: dict[str, str]) -> ValidationReport:
        return validate_change(base_dir=base, head_dir=head, changed_files=["pkg/core.py", "pkg/util.py"],
                               tests=None, acceptance_tests=[], sandbox=BubblewrapSandbox(), settings=settings,
                               moves=moves)

    moved = check(run({"pkg.util.helper": "pkg.core.helper"}), "ruff")
    assert (moved.state, moved.base_failures, moved.head_failures) == ("passed", 1, 1)
    assert check(run({}), "ruff").state == "failed"
