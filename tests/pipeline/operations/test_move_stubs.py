"""move_symbol with `.pyi` stubs, star-importing packages and `@overload` sets: the types and the
package's interface stay where users and type checkers find them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import make_repo
from tests.pipeline.operations.test_move import move, python, read, refuse

TYPED = {
    "pkg/__init__.py": "from .core import *\nfrom .extra import *\n",
    "pkg/__init__.pyi": "from .core import *\nfrom .extra import *\n",
    "pkg/core.py": '''"""Core helpers."""

__all__ = ["first", "pair"]


def first(items, default=None):
    for item in items:
        return item
    return default


def pair(a):
    return (first([a]), a)
''',
    "pkg/core.pyi": '''"""Stubs for pkg.core."""

from typing import Iterable, TypeVar, overload

_T = TypeVar("_T")
_U = TypeVar("_U")

@overload
def first(items: Iterable[_T]) -> _T | None: ...
@overload
def first(items: Iterable[_T], default: _U) -> _T | _U: ...
def pair(a: _T) -> tuple[_T | None, _T]: ...
''',
    "pkg/extra.py": '__all__ = ["twice"]\n\n\ndef twice(x):\n    return 2 * x\n',
    "pkg/extra.pyi": "def twice(x: int) -> int: ...\n",
    "pkg/py.typed": "",
    "use.py": "from pkg import first\n\nname: str | None = first(['a'])\nnumber: str = first([1], 0)\n",
}


def _pyright(root: Path) -> list[str]:
    """Pyright's error lines for `use.py` (where the types come from the stubs)."""
    done = subprocess.run([sys.executable, "-m", "pyright", "--outputjson", "use.py"], cwd=root,
                          capture_output=True, text=True, timeout=300, check=False)
    report = json.loads(done.stdout)
    return [f"{d['range']['start']['line'] + 1}: {d['message']}"
            for d in report["generalDiagnostics"] if d["severity"] == "error"]


def test_a_move_to_a_new_module_takes_the_overloaded_signatures_into_a_new_stub(
        tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", TYPED)
    move(root, "pkg.core.first", "pkg.picking")
    stub = read(root, "pkg/picking.pyi")
    assert stub.count("@overload\ndef first(") == 2
    assert "from typing import Iterable, TypeVar, overload\n" in stub
    assert '\n_T = TypeVar("_T")\n_U = TypeVar("_U")\n' in stub  # copied, not imported
    core_stub = read(root, "pkg/core.pyi")
    assert "def first" not in core_stub and "def pair(a: _T)" in core_stub
    # pair still uses first, and `from .core import *` still offers it: both need it in core
    assert "from pkg.picking import first as first\n" in core_stub
    assert "from pkg.picking import first\n" in read(root, "pkg/core.py")
    assert '__all__ = ["first", "pair"]' in read(root, "pkg/core.py")
    run = python(root, "-c", "import pkg; print(pkg.first([], 3), pkg.pair(5))")
    assert run.stdout.strip() == "3 (5, 5)", run.stderr
    errors = _pyright(root)
    assert len(errors) == 1 and errors[0].startswith("4: "), errors  # int | int is no str


def test_a_move_into_a_module_with_a_stub_appends_the_signature_there(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", TYPED)
    move(root, "pkg.core.first", "pkg.extra")
    assert read(root, "pkg/extra.pyi").startswith(
        'from typing import Iterable, TypeVar, overload\n\n_T = TypeVar("_T")\n')
    assert "def twice(x: int) -> int: ...\n" in read(root, "pkg/extra.pyi")
    assert '__all__ = ["first", "twice"]' in read(root, "pkg/extra.py")
    assert python(root, "-c", "import pkg; print(pkg.first('xy'))").stdout.strip() == "x"
    errors = _pyright(root)
    assert len(errors) == 1 and errors[0].startswith("4: "), errors


def test_a_move_that_would_lose_or_invent_types_is_refused(tmp_path: Path) -> None:
    files = {**TYPED, "pkg/plain.py": "def other():\n    return 1\n"}
    root = make_repo(tmp_path / "r", files)
    error, _ = refuse(root, "pkg.core.first", "pkg.plain")
    assert "pkg/core.pyi declares its types" in error.message and "pkg/plain.pyi" in error.hint
    error, _ = refuse(root, "pkg.plain.other", "pkg.extra")
    assert "pkg/extra.pyi types that module" in error.message


def test_a_name_a_package_star_imports_stays_part_of_the_package(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", {
        "lib/__init__.py": "from .core import *\n",
        "lib/core.py": "def helper():\n    return 'help'\n\n\ndef _hidden():\n    return 0\n",
        "main.py": "import lib\n\nprint(lib.helper())\n",
    })
    move(root, "lib.core.helper", "lib.tools")
    assert "from lib.tools import helper as helper\n" in read(root, "lib/core.py")
    assert python(root, "main.py").stdout.strip() == "help"
    move(root, "lib.core._hidden", "lib.tools")  # not offered by `import *`: nothing kept
    assert "_hidden" not in read(root, "lib/core.py")


def test_a_destination_that_star_imports_the_old_module_needs_no_re_export(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", {
        "lib/__init__.py": "",
        "lib/core.py": "def helper():\n    return 'help'\n",
        "lib/api.py": "from lib.core import *\n\n\ndef run():\n    return helper()\n",
    })
    move(root, "lib.core.helper", "lib.api")
    assert "helper" not in read(root, "lib/core.py")
    assert python(root, "-c", "from lib.api import run; print(run())").stdout.strip() == "help"


def test_an_overloaded_function_moves_with_all_its_signatures(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", {
        "app/__init__.py": "",
        "app/conv.py": "from typing import overload\n\n\n@overload\ndef conv(x: int) -> int: ...\n"
                       "@overload\ndef conv(x: str) -> str: ...\ndef conv(x):\n    return x\n",
        "main.py": "from app.conv import conv\n\nprint(conv(1), conv('a'))\n",
    })
    move(root, "app.conv.conv", "app.convert")
    new = read(root, "app/convert.py")
    assert new.startswith("from typing import overload\n") and new.count("def conv(") == 3
    assert "conv" not in read(root, "app/conv.py")
    assert python(root, "main.py").stdout.strip() == "1 a"
