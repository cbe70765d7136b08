"""Chunking real Python source with tree-sitter: names, lines, docstrings, identifiers, imports."""

from __future__ import annotations

import subprocess
from pathlib import Path

from diffusellm.pipeline.locate.chunks import (
    MAX_EMBED_CHARS,
    chunk_file,
    chunk_source,
    embedding_text,
    git_blob_id,
    is_test_path,
    split_identifier,
    without_docstrings,
)

SOURCE = '''\
"""Prices and discounts for the shop."""

from __future__ import annotations

import decimal as dec
from typing import TYPE_CHECKING

from .models import Cart, LineItem
from ..util import rounding

if TYPE_CHECKING:
    def _typed_only(x: int) -> int:
        return x

RATE = dec.Decimal("0.2")  # standard VAT rate


@rounding.cached
def apply_discount(cart: Cart, percent: float = 0.0) -> dec.Decimal:
    """Apply a percentage discount to the cart total.

    Negative percentages are refused.
    """
    if percent < 0:
        raise ValueError("discount must not be negative")
    total = sum(item.unit_price * item.quantity for item in cart.items)
    return rounding.to_cents(total * (1 - percent / 100))


class PriceBook:
    """Known prices by SKU."""

    currency = "EUR"

    def lookup(self, sku: str) -> dec.Decimal:
        """Price of one SKU."""
        return self._prices[sku]

    class Entry:
        def render(self):
            return f"{self.sku}: {self.price}"
'''


def _by_name(source: str = SOURCE) -> dict[str, object]:
    chunks = chunk_source("shop/pricing.py", "shop.pricing", source.encode())
    return {c.qualname: c for c in chunks}


def test_chunks_cover_module_functions_classes_and_methods() -> None:
    chunks = chunk_source("shop/pricing.py", "shop.pricing", SOURCE.encode())
    kinds = {c.qualname: c.kind for c in chunks}
    assert kinds == {
        "shop.pricing": "module",
        "shop.pricing._typed_only": "function",
        "shop.pricing.apply_discount": "function",
        "shop.pricing.PriceBook": "class",
        "shop.pricing.PriceBook.lookup": "method",
        "shop.pricing.PriceBook.Entry": "class",
        "shop.pricing.PriceBook.Entry.render": "method",
    }
    assert all(c.path == "shop/pricing.py" and c.blob == git_blob_id(SOURCE.encode())
               for c in chunks)


def test_function_chunk_has_lines_signature_docstring_and_code_facts() -> None:
    chunk = _by_name()["shop.pricing.apply_discount"]
    lines = SOURCE.splitlines()
    assert lines[chunk.start_line - 1] == "@rounding.cached"  # decorators belong to the def
    assert lines[chunk.end_line - 1].strip().startswith("return rounding.to_cents")
    assert chunk.signature == "def apply_discount(cart: Cart, percent: float = 0.0) -> dec.Decimal"
    assert chunk.docstring == (
        "Apply a percentage discount to the cart total.\n\nNegative percentages are refused.")
    assert {"cart", "percent", "unit_price", "quantity", "total"} <= set(chunk.identifiers)
    assert "discount must not be negative" in chunk.literals
    assert not any("percentage discount" in lit for lit in chunk.literals)
    assert {"ValueError", "sum", "rounding.to_cents"} <= set(chunk.calls)


def test_class_chunk_leaves_method_code_to_the_methods() -> None:
    chunks = _by_name()
    book = chunks["shop.pricing.PriceBook"]
    lookup = chunks["shop.pricing.PriceBook.lookup"]
    assert book.signature == "class PriceBook"
    assert "currency" in book.identifiers and "_prices" not in book.identifiers
    assert "_prices" in lookup.identifiers
    assert lookup.signature == "def lookup(self, sku: str) -> dec.Decimal"


def test_module_chunk_resolves_relative_imports_and_keeps_top_level_text() -> None:
    module = _by_name()["shop.pricing"]
    imports = dict(module.imports)
    assert imports["dec"] == "decimal"
    assert imports["Cart"] == "shop.models.Cart"
    assert imports["rounding"] == "util.rounding"
    assert module.docstring == "Prices and discounts for the shop."
    assert "RATE" in module.identifiers
    assert "standard VAT rate" in module.literals
    assert _by_name()["shop.pricing.apply_discount"].imports == ()


def test_package_init_resolves_relative_imports_against_itself() -> None:
    chunks = chunk_source("shop/__init__.py", "shop", b"from .pricing import apply_discount\n")
    assert dict(chunks[0].imports) == {"apply_discount": "shop.pricing.apply_discount"}


def test_broken_syntax_still_yields_the_intact_definitions() -> None:
    source = "def good(a):\n    return a\n\ndef broken(:\n    pass\n"
    names = [c.qualname for c in chunk_source("m.py", "m", source.encode())]
    assert "m.good" in names


def test_chunk_file_names_modules_by_package_path(tmp_path: Path) -> None:
    (tmp_path / "src" / "shop").mkdir(parents=True)
    (tmp_path / "src" / "shop" / "__init__.py").write_text("")
    (tmp_path / "src" / "shop" / "pricing.py").write_text(SOURCE)
    chunks = chunk_file(tmp_path, "src/shop/pricing.py")
    assert chunks[0].qualname == "shop.pricing"
    assert chunks[0].path == "src/shop/pricing.py"


def test_blob_id_matches_git_hash_object(tmp_path: Path) -> None:
    path = tmp_path / "f.py"
    path.write_bytes(SOURCE.encode())
    out = subprocess.run(["git", "hash-object", str(path)], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert git_blob_id(SOURCE.encode()) == out


def test_split_identifier_handles_case_underscores_acronyms_and_digits() -> None:
    assert split_identifier("parseHTTPResponse_code2") == ["parse", "HTTP", "Response", "code", "2"]
    assert split_identifier("__init__") == ["init"]
    assert split_identifier("MAX_RETRIES") == ["MAX", "RETRIES"]


def test_embedding_text_is_compact_and_readable() -> None:
    chunk = _by_name()["shop.pricing.apply_discount"]
    text = embedding_text(chunk)
    assert text.startswith("shop pricing apply discount\ndef apply_discount(")
    assert "Apply a percentage discount" in text
    assert "unit price" in text  # identifiers split into words
    long = chunk_source("m.py", "m", ("def f():\n" + "".join(
        f"    variable_number_{i} = {i}\n" for i in range(300))).encode())[1]
    assert len(embedding_text(long)) <= MAX_EMBED_CHARS


def test_without_docstrings_blanks_only_docstrings() -> None:
    chunks = chunk_source("shop/pricing.py", "shop.pricing", SOURCE.encode())
    blank = without_docstrings(chunks)
    assert all(c.docstring == "" for c in blank)
    assert [c.identifiers for c in blank] == [c.identifiers for c in chunks]


def test_is_test_path() -> None:
    assert is_test_path("tests/test_cart.py")
    assert is_test_path("src/shop/tests/helpers.py")
    assert is_test_path("conftest.py")
    assert is_test_path("shop/cart_test.py")
    assert not is_test_path("shop/testing_utils.py")
    assert not is_test_path("shop/contest.py")
