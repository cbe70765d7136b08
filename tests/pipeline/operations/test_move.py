"""move_symbol on real packages: LibCST edits, then the moved code imported and tested for real."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from diffusellm.errors import OperationError
from diffusellm.pipeline.operations.move.symbol import apply_move
from diffusellm.pipeline.project import Project
from diffusellm.pipeline.spec import MoveSymbol
from tests.conftest import make_repo, unpack_sdist

SHOP = {
    "shop/__init__.py": '''"""A small shop."""

from shop.prices import discount, total

__all__ = ["discount", "total"]
''',
    "shop/config.py": "RATE = 0.1\nLOYAL_BONUS = 0.05\nCURRENCY = 'EUR'\n",
    "shop/prices.py": '''"""Prices."""

from __future__ import annotations

import json as js
import math
import os
from typing import TYPE_CHECKING

from .config import CURRENCY, LOYAL_BONUS, RATE

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["TAX", "describe", "discount", "total"]

TAX = 0.2


def total(items: Sequence[float]) -> float:
    return round(sum(items) * (1 + TAX), 2)


# --- rules ---


# Discount rules for loyal customers.
# They stack with the configured rate.
def discount(price: float, *, loyal: bool = False) -> float:
    """Return the discounted price, rounded up to the cent."""
    # rounding up keeps the shop's margin
    factor = 1 - RATE - (LOYAL_BONUS if loyal else 0.0)
    return math.ceil(price * factor * 100) / 100 + len(js.dumps([])) * 0


def describe() -> str:
    return os.sep + CURRENCY
''',
    "shop/cart.py": '''import shop.prices
from shop.prices import TAX, total
from shop.prices import discount as disc

from . import prices


def checkout(price: float) -> float:
    return disc(price) + prices.discount(price) + shop.prices.discount(price) + TAX * 0


def totals() -> float:
    return total([1.0])
''',
    "shop/report.py": "from .prices import discount  # the one rule\n\n\n"
                      "def line(price: float) -> str:\n    return f'{discount(price):.2f}'\n",
    "tests/test_shop.py": '''from unittest import mock

import shop
from shop.cart import checkout
from shop.prices import discount


def test_discount() -> None:
    assert discount(10.0, loyal=True) == 8.5
    assert shop.discount(10.0) == 9.0


def test_patch() -> None:
    with mock.patch("shop.prices.discount", return_value=1.0):
        assert checkout(10.0) == 9.0 + 1.0 + 1.0
''',
}

NEW_PRICING = '''"""Home of discount, moved here from shop.prices."""

from __future__ import annotations

import json as js
import math

from .config import LOYAL_BONUS, RATE


# Discount rules for loyal customers.
# They stack with the configured rate.
def discount(price: float, *, loyal: bool = False) -> float:
    """Return the discounted price, rounded up to the cent."""
    # rounding up keeps the shop's margin
    factor = 1 - RATE - (LOYAL_BONUS if loyal else 0.0)
    return math.ceil(price * factor * 100) / 100 + len(js.dumps([])) * 0
'''


def move(root: Path, target: str, to_module: str) -> Project:
    """Apply move_symbol and write the pending edits to disk."""
    project = Project.load(root)
    apply_move(project, MoveSymbol(op="move_symbol", target=target, to_module=to_module))
    for rel, text in project.changes().items():
        assert text is not None
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return project


def refuse(root: Path, target: str, to_module: str) -> tuple[OperationError, Project]:
    project = Project.load(root)
    with pytest.raises(OperationError) as info:
        apply_move(project, MoveSymbol(op="move_symbol", target=target, to_module=to_module))
    assert project.changes() == {}
    return info.value, project


def python(root: Path, *args: str, path: str = ".") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root / path), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=300, check=False)


def read(root: Path, rel: str) -> str:
    return (root / rel).read_text(encoding="utf-8")


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "shop-repo", SHOP)


def test_move_to_new_module_rewrites_every_importer_and_keeps_working(shop: Path) -> None:
    assert python(shop, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests").returncode == 0
    project = move(shop, "shop.prices.discount", "shop.pricing")

    assert read(shop, "shop/pricing.py") == NEW_PRICING
    assert project.path_of("shop.pricing") == "shop/pricing.py"
    old = read(shop, "shop/prices.py")
    assert "def discount" not in old and "Discount rules" not in old
    assert "2)\n\n\n# --- rules ---\n\n\ndef describe()" in old  # detached comment stays
    assert '__all__ = ["TAX", "describe", "total"]' in old
    assert "import math" not in old and "import json" not in old  # only discount used them
    assert "from .config import CURRENCY\n" in old  # RATE, LOYAL_BONUS dropped, CURRENCY kept
    assert "import os\n" in old and "from collections.abc import Sequence" in old
    assert read(shop, "shop/__init__.py").startswith(
        '"""A small shop."""\n\nfrom shop.prices import total\nfrom shop.pricing import discount\n')
    cart = read(shop, "shop/cart.py")
    assert cart.startswith("import shop.pricing\nfrom shop.prices import TAX, total\n"
                           "from shop.pricing import discount as disc\n\nfrom . import pricing\n")
    assert "pricing.discount(price) + shop.pricing.discount(price)" in cart
    assert read(shop, "shop/report.py").startswith("from .pricing import discount  # the one rule")
    assert 'mock.patch("shop.pricing.discount"' in read(shop, "tests/test_shop.py")

    run = python(shop, "-c", "import shop; from shop.pricing import discount; "
                             "print(discount(10.0, loyal=True), shop.discount(10.0))")
    assert run.stdout.split() == ["8.5", "9.0"], run.stderr
    tests = python(shop, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests")
    assert tests.returncode == 0, tests.stdout + tests.stderr
    lint = python(shop, "-m", "ruff", "check", "--isolated", "--select", "F,I", "shop", "tests")
    assert lint.returncode == 0, lint.stdout


def test_move_into_existing_module_appends_class_and_merges_imports(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", {
        "app/__init__.py": "",
        "app/models.py": '''from dataclasses import dataclass, field

from app.util import slug


def make() -> "Item":
    return Item(slug("A b"))


@dataclass
class Item:
    """An item."""

    name: str
    tags: list[str] = field(default_factory=list)
''',
        "app/util.py": "def slug(text: str) -> str:\n    return text.lower().replace(' ', '-')\n",
        "app/store.py": '''"""Storage."""

from dataclasses import dataclass

__all__ = ["Store"]


@dataclass
class Store:
    items: list[str]
''',
    })
    move(root, "app.models.Item", "app.store")
    store = read(root, "app/store.py")
    assert store.startswith('"""Storage."""\n\nfrom dataclasses import dataclass, field\n')
    assert '__all__ = ["Item", "Store"]' in store
    assert store.endswith("    items: list[str]\n\n\n@dataclass\nclass Item:\n    \"\"\"An item."
                          "\"\"\"\n\n    name: str\n    tags: list[str] = field(default_factory="
                          "list)\n")
    models = read(root, "app/models.py")
    assert models.startswith("from app.store import Item\nfrom app.util import slug\n")
    assert "from dataclasses" not in models  # dataclass and field were used by Item only
    run = python(root, "-c", "from app.models import make; print(make().name)")
    assert run.stdout.strip() == "a-b", run.stderr


def test_unused_import_kept_when_another_module_imports_it_from_the_old_module(
        tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", {
        "lib/__init__.py": "",
        "lib/consts.py": "LIMIT = 3\n",
        "lib/core.py": "from lib.consts import LIMIT\n\n\ndef clip(n: int) -> int:\n"
                       "    return min(n, LIMIT)\n",
        "lib/api.py": "from lib.core import LIMIT, clip\n\n\ndef top() -> int:\n"
                      "    return clip(10) + LIMIT\n",
    })
    move(root, "lib.core.clip", "lib.clipping")
    assert read(root, "lib/core.py").startswith("from lib.consts import LIMIT\n")
    assert read(root, "lib/api.py").startswith(
        "from lib.clipping import clip\nfrom lib.core import LIMIT\n")
    assert python(root, "-c", "from lib.api import top; print(top())").stdout.strip() == "6"


def test_old_module_still_using_the_symbol_imports_it_back(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", {
        "pkg/__init__.py": "",
        "pkg/a.py": "import re\n\n\ndef words(text: str) -> list[str]:\n"
                    "    return re.findall(r'\\w+', text)\n\n\n"
                    "def count(text: str) -> int:\n    return len(words(text))\n",
    })
    move(root, "pkg.a.words", "pkg.text")
    old = read(root, "pkg/a.py")
    assert old.startswith("from pkg.text import words\n") and "import re" not in old
    run = python(root, "-c", "from pkg.a import count; print(count('a b c'))")
    assert run.stdout.strip() == "3", run.stderr


def test_move_to_a_new_top_level_module_sorts_it_with_the_first_party_imports(
        tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", {
        "words/__init__.py": "def shout(text: str) -> str:\n    return text.upper()\n\n\n"
                             "def whisper(text: str) -> str:\n    return text.lower()\n",
        "test_words.py": "import pytest\n\nimport words\n\n\ndef test_shout() -> None:\n"
                         "    assert words.shout('a') == words.whisper('A').upper()\n"
                         "    with pytest.raises(AttributeError):\n"
                         "        words.shout(1)  # type: ignore[arg-type]\n",
    })
    move(root, "words.shout", "loud")
    assert read(root, "test_words.py").startswith("import pytest\n\nimport loud\nimport words\n")
    lint = python(root, "-m", "ruff", "check", "--isolated", "--select", "F,I", ".")
    assert lint.returncode == 0, lint.stdout
    tests = python(root, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_words.py")
    assert tests.returncode == 0, tests.stdout + tests.stderr


def test_a_module_alias_imported_after_its_uses_is_kept_while_other_uses_remain(
        tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", {
        "pkg/__init__.py": "",
        "pkg/util.py": "def helper() -> int:\n    return 1\n\n\ndef other() -> int:\n    return 2\n",
        "pkg/main.py": "import os\n\n\ndef run() -> int:\n    return _u.helper() + _u.other() + len(os.sep)\n"
                       "\n\nfrom . import util as _u  # noqa: E402  (late, as some projects do)\n",
    })
    move(root, "pkg.util.helper", "pkg.helpers")
    main = read(root, "pkg/main.py")
    assert "from . import util as _u" in main and "helpers.helper() + _u.other()" in main
    assert python(root, "-c", "from pkg.main import run; print(run())").stdout.strip() == "4"
    lint = python(root, "-m", "ruff", "check", "--isolated", "--select", "F,I", ".")
    assert lint.returncode == 0, lint.stdout


def test_only_the_annotations_future_follows_the_code_into_a_new_module(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", {
        "pkg/__init__.py": "",
        "pkg/a.py": "from __future__ import absolute_import, annotations, division\n\n\n"
                    "def half(x: int) -> float:\n    return x / 2\n",
    })
    move(root, "pkg.a.half", "pkg.b")
    assert "from __future__ import annotations\n" in read(root, "pkg/b.py")
    assert "absolute_import" not in read(root, "pkg/b.py") and "division" not in read(root, "pkg/b.py")
    lint = python(root, "-m", "ruff", "check", "--isolated", "--target-version", "py311",
                  "--select", "F,I,UP010", "pkg/b.py")
    assert lint.returncode == 0, lint.stdout


def test_a_use_bound_by_a_function_level_import_gets_its_new_import_there(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", {
        "pkg/__init__.py": "def compile_(x: str) -> str:\n    return x\n",
        "pkg/parser.py": "X = 1\n",
        "tests/test_x.py": "import os\n\n\ndef test_it() -> None:\n    import pkg.parser\n\n"
                           "    assert pkg.compile_(os.sep) == os.sep and pkg.parser.X == 1\n",
    })
    move(root, "pkg.compile_", "pkg.compiling")
    test = read(root, "tests/test_x.py")
    assert test.startswith("import os\n\n\ndef test_it")  # nothing added at the top
    assert "    import pkg.compiling\n    import pkg.parser\n" in test  # in isort's order
    assert "pkg.compiling.compile_(os.sep)" in test
    tests = python(root, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests")
    assert tests.returncode == 0, tests.stdout + tests.stderr
    lint = python(root, "-m", "ruff", "check", "--isolated", "--select", "F,E4,I", ".")
    assert lint.returncode == 0, lint.stdout


def test_cycle_is_refused_with_the_places_that_cause_it(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", {
        "pkg/__init__.py": "",
        "pkg/a.py": "def base() -> int:\n    return 1\n\n\ndef helper() -> int:\n"
                    "    return base() + 1\n\n\ndef user() -> int:\n    return helper()\n",
    })
    error, _ = refuse(root, "pkg.a.helper", "pkg.b")
    assert "import cycle" in error.message and "pkg/a.py:10" in error.message
    assert "base" in error.message and not (root / "pkg/b.py").exists()


def test_cycle_through_a_package_init_the_move_never_touches_is_refused(tmp_path: Path) -> None:
    files = {
        "pkg/__init__.py": "from ._wrap import wrap\n\n\nclass Store:\n    pass\n",
        "pkg/_wrap.py": "import pkg\n\n\ndef wrap(f):\n    return pkg.Store and f\n",
        "pkg/api.py": "from . import Store\n\n\ndef make() -> Store:\n    return Store()\n",
        "main.py": "from pkg.api import make\n\nprint(type(make()).__name__)\n",
    }
    root = make_repo(tmp_path / "r", files)
    error, _ = refuse(root, "pkg.api.make", "pkg._wrap")
    assert "import cycle" in error.message and "pkg._wrap -> pkg -> pkg._wrap" in error.message
    assert read(root, "pkg/_wrap.py") == files["pkg/_wrap.py"]
    # `import pkg` was already a loop that works (it needs nothing bound); the new
    # `from . import Store` is what would fail. A module outside the loop is fine.
    move(root, "pkg.api.make", "pkg.factory")
    assert python(root, "main.py").stdout.strip() == "Store"


def test_a_loop_of_bare_module_imports_is_no_cycle_to_refuse(tmp_path: Path) -> None:
    # each module finds the other half-run in sys.modules and uses it only when called
    root = make_repo(tmp_path / "r", {
        "pkg/__init__.py": "",
        "pkg/a.py": "from pkg import b\n\n\ndef base() -> int:\n    return 1\n\n\n"
                    "def twice() -> int:\n    return b.double(base())\n",
        "pkg/b.py": "def double(x: int) -> int:\n    return 2 * x\n",
        "pkg/c.py": "from pkg import a\n\n\ndef plus_one() -> int:\n    return a.base() + 1\n",
        "main.py": "from pkg.c import plus_one\nfrom pkg.a import twice\n\nprint(plus_one(), twice())\n",
    })
    move(root, "pkg.c.plus_one", "pkg.b")
    assert "from pkg import a" in read(root, "pkg/b.py")
    assert python(root, "main.py").stdout.split() == ["2", "2"]
    assert python(root, "-c", "import pkg.b; import pkg.a; print(pkg.b.plus_one())").stdout.strip() == "2"


def test_package_init_that_exports_the_symbol_re_exports_it_from_the_new_place(
        tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", {
        "pkg/__init__.py": '"""Pkg."""\n\nfrom .core import VERSION\n\n__all__ = ["VERSION", '
                           '"greet"]\n\n\ndef greet(name: str) -> str:\n'
                           '    return f"hi {name} {VERSION}"\n',
        "pkg/core.py": "VERSION = '1'\n",
        "main.py": "from pkg import greet\nimport pkg\n\nprint(greet('a'), pkg.greet('b'))\n",
    })
    move(root, "pkg.greet", "pkg.greeting")
    init = read(root, "pkg/__init__.py")
    assert "from .greeting import greet\n" in init and '"greet"]' in init
    assert "from .core import VERSION\n" in read(root, "pkg/greeting.py")
    assert read(root, "main.py").startswith("import pkg.greeting\nfrom pkg.greeting import greet\n")
    assert python(root, "main.py").stdout.strip() == "hi a 1 hi b 1"
    assert python(root, "-c", "from pkg import greet; print(greet('c'))").stdout.strip() == "hi c 1"


def test_new_subpackage_is_created_only_under_an_existing_package(shop: Path) -> None:
    project = move(shop, "shop.prices.total", "shop.util.sums")
    assert read(shop, "shop/util/__init__.py") == ""
    assert project.path_of("shop.util.sums") == "shop/util/sums.py"
    assert project.path_of("shop.util") == "shop/util/__init__.py"
    assert "from ..prices import TAX\n" in read(shop, "shop/util/sums.py")
    run = python(shop, "-c", "import shop; print(shop.total([1.0, 1.0]))")
    assert run.stdout.strip() == "2.4", run.stderr
    error, _ = refuse(shop, "shop.prices.describe", "elsewhere.texts")
    assert "elsewhere" in error.message


@pytest.mark.parametrize(("target", "to_module", "words"), [
    ("shop.prices.TAX", "shop.pricing", "module-level variable"),
    ("shop.prices.discount", "shop.config", "already defines"),
    ("shop.prices.discount", "shop.prices", "already in"),
])
def test_unsafe_or_pointless_moves_are_refused_without_writing(
        shop: Path, target: str, to_module: str, words: str) -> None:
    if words == "already defines":
        (shop / "shop/config.py").write_text("def discount() -> None: ...\n", encoding="utf-8")
    error, _ = refuse(shop, target, to_module)
    assert words in error.message
    assert read(shop, "shop/prices.py") == SHOP["shop/prices.py"]


@pytest.mark.parametrize(("target", "words", "where"), [
    ("m.A.run", "inside a class", "m.py:4"),
    ("m.outer.inner", "nested inside the function m.outer", "m.py:7"),
    ("m.bump", "rebinds module globals", "m.py:12"),
    ("m.reads", "rebind with `global`", "m.py"),
    ("m.maybe", "defined conditionally", "m.py"),
])
def test_definitions_that_cannot_move_are_refused_with_their_location(
        tmp_path: Path, target: str, words: str, where: str) -> None:
    root = make_repo(tmp_path / "r", {"m.py": """class A:
    x = 1

    def run(self) -> None:
        pass

def outer() -> None:
    def inner() -> None: ...

count = 0
def bump() -> None:
    global count
    count += 1

def reads() -> int:
    return count

if count:
    def maybe() -> None: ...
"""})
    error, _ = refuse(root, target, "n")
    assert words in error.message and where in str(error)


@pytest.mark.parametrize("code", [
    "from shop import prices\n\nfn = getattr(prices, 'discount')\n",
    "import importlib\n\nfn = importlib.import_module('shop.prices').discount\n",
    "from unittest import mock\n\nimport shop.prices\n\n"
    "patcher = mock.patch.object(shop.prices, 'discount')\n",
])
def test_dynamic_access_by_name_is_refused_with_file_and_line(shop: Path, code: str) -> None:
    (shop / "shop/dyn.py").write_text(code, encoding="utf-8")
    error, _ = refuse(shop, "shop.prices.discount", "shop.pricing")
    assert "shop/dyn.py:3" in error.message or "shop/dyn.py:5" in error.message


def test_humanize_function_moved_to_new_module_passes_humanize_tests(tmp_path: Path) -> None:
    root = unpack_sdist("humanize-4.17.0", tmp_path)
    move(root, "humanize.number.intcomma", "humanize.numfmt")
    numfmt = read(root, "src/humanize/numfmt.py")
    assert "from .number import _format_not_finite\n" in numfmt
    assert "TYPE_CHECKING = False\nif TYPE_CHECKING:\n    from .number import NumberOrString\n" \
        in numfmt
    assert "def intcomma" not in read(root, "src/humanize/number.py")
    assert "from .numfmt import intcomma\n" in read(root, "src/humanize/time.py")
    lint = python(root, "-m", "ruff", "check", "--no-fix", "src", "tests")  # humanize's own config
    assert lint.returncode == 0, lint.stdout
    tests = python(root, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_number.py",
                   "tests/test_time.py", path="src")
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-3000:]
    assert " passed" in tests.stdout


def test_humanize_moves_between_existing_modules_or_refuses_a_cycle(tmp_path: Path) -> None:
    root = unpack_sdist("humanize-4.17.0", tmp_path)
    error, _ = refuse(root, "humanize.number.scientific", "humanize.filesize")
    assert "import cycle" in error.message and "src/humanize/number.py:" in error.message
    move(root, "humanize.number.intcomma", "humanize.time")  # time imported it from number
    time = read(root, "src/humanize/time.py")
    assert "def intcomma(" in time and "from .number import intcomma" not in time
    assert "from .number import _format_not_finite\n" in time
    assert "from humanize.time import (\n    intcomma,\n" in read(root, "src/humanize/__init__.py")
    tests = python(root, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_number.py",
                   "tests/test_time.py", path="src")
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-3000:]
