"""Files whose names LibCST cannot resolve are skipped with a warning naming them, unless the operation
needs them; a file that names the symbol and cannot be parsed is a refusal naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from diffusellm.errors import OperationError
from diffusellm.pipeline.operations.apply import apply_operations
from diffusellm.pipeline.operations.generative.functions import GenerativeContext
from diffusellm.pipeline.spec import RenameSymbol
from tests.conftest import make_repo

FILES = {
    "pkg/__init__.py": "",
    "pkg/core.py": "def greet() -> str:\n    return 'hi'\n",
    "use.py": "from pkg.core import greet\n\nprint(greet())\n",
    # flask's examples/ apps: a relative import that climbs above the top package
    "examples/app.py": "from ..pkg.core import greet\n\nprint(greet())\n",
}


def rename(root: Path, target: str) -> tuple[dict[str, str | None], list[str]]:
    context = GenerativeContext()
    op = RenameSymbol(op="rename_symbol", target=target, new_name="welcome")
    return apply_operations(root, [op], context=context), context.warnings


def test_files_whose_names_cannot_be_resolved_are_skipped_with_a_warning(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", FILES)
    (root / "legacy.py").write_bytes("# -*- coding: latin-1 -*-\nfrom pkg.core import greet  # é\n".encode("latin-1"))
    changes, warnings = rename(root, "pkg.core.greet")
    assert sorted(changes) == ["legacy.py", "pkg/core.py", "use.py"], "a PEP 263 file is read in its encoding"
    assert changes["use.py"] == "from pkg.core import welcome\n\nprint(welcome())\n"
    assert [w.split(" ", 1)[0] for w in warnings] == ["examples/app.py"]
    assert "relative import beyond top-level package" in warnings[0] and "were not updated" in warnings[0]


def test_a_file_naming_the_symbol_that_cannot_be_parsed_is_a_refusal(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", {**FILES, "broken.py": "def greet(:\n"})
    with pytest.raises(OperationError, match=r"cannot analyse broken\.py: .*syntax error"):
        rename(root, "pkg.core.greet")
    assert (root / "use.py").read_text(encoding="utf-8") == FILES["use.py"], "nothing was written"


def test_the_file_the_operation_needs_is_a_refusal_naming_it(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", {**FILES, "examples/__init__.py": "",
                                         "examples/app.py": "from ..pkg import core\n\n\ndef run() -> None:\n    core.greet()\n"})
    with pytest.raises(OperationError, match=r"cannot analyse examples/app\.py: LibCST cannot resolve"):
        rename(root, "examples.app.run")
    assert (root / "examples" / "app.py").read_text(encoding="utf-8").count("def run") == 1
