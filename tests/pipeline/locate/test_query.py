"""Localisation end to end on a small real git repository, with the real shipped MiniLM model."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from diffusellm.errors import InputError
from diffusellm.pipeline.locate.embed import MiniLMEmbedder
from diffusellm.pipeline.locate.graph import chunk_edges, knowledge_graph_edges
from diffusellm.pipeline.locate.index import build_index
from diffusellm.pipeline.locate.query import approx_tokens, locate, locate_command, pack_context
from diffusellm.pipeline.locate.similar import find_similar_functions

FILES = {
    "src/shop/__init__.py": '"""A tiny shop."""\nfrom .cart import Cart\n',
    "src/shop/cart.py": '''\
"""Shopping carts."""
from dataclasses import dataclass, field

from .pricing import apply_discount


@dataclass
class LineItem:
    sku: str
    unit_price: float
    quantity: int = 1


@dataclass
class Cart:
    items: list[LineItem] = field(default_factory=list)

    def add(self, sku: str, unit_price: float, quantity: int = 1) -> None:
        for item in self.items:
            if item.sku == sku:
                item.quantity += quantity
                return
        self.items.append(LineItem(sku, unit_price, quantity))

    def checkout(self, code: str) -> float:
        percent = {"SPRING": 10.0, "VIP": 25.0}.get(code, 0.0)
        return apply_discount(self, percent)
''',
    "src/shop/pricing.py": '''\
"""Totals and discounts."""


def subtotal(cart) -> float:
    return sum(item.unit_price * item.quantity for item in cart.items)


def apply_discount(cart, percent: float) -> float:
    if percent < 0 or percent > 100:
        raise ValueError("discount percent out of range")
    average = subtotal(cart) / len(cart.items)
    return round(average * len(cart.items) * (1 - percent / 100), 2)
''',
    "src/shop/storage.py": '''\
"""Saving carts as JSON files."""
import json
from pathlib import Path


def save_cart(cart, path: Path) -> None:
    rows = [{"sku": item.sku, "unit_price": item.unit_price} for item in cart.items]
    path.write_text(json.dumps(rows, indent=2))


def load_cart(path: Path):
    from .cart import Cart

    cart = Cart()
    for row in json.loads(path.read_text()):
        cart.add(row["sku"], row["unit_price"], row.get("quantity", 1))
    return cart
''',
    "src/shop/report.py": '''\
"""Printable sales reports."""


def format_money(amount: float, currency: str = "EUR") -> str:
    return f"{amount:,.2f} {currency}"


def render_table(rows: list[tuple[str, float]]) -> str:
    width = max((len(name) for name, _ in rows), default=0)
    return "\\n".join(f"{name:<{width}}  {format_money(value)}" for name, value in rows)
''',
    "tests/test_storage.py": '''\
from shop.storage import load_cart, save_cart
from shop.cart import Cart


def test_saved_cart_loads_back_with_quantities(tmp_path):
    cart = Cart()
    cart.add("apple", 0.5, quantity=3)
    save_cart(cart, tmp_path / "cart.json")
    assert load_cart(tmp_path / "cart.json").items[0].quantity == 3
''',
}

TRACEBACK = '''\
Checkout with an empty cart crashes

Traceback (most recent call last):
  File "/home/ana/app.py", line 12, in <module>
    print(cart.checkout("SPRING"))
  File "/venv/lib/python3.12/site-packages/shop/cart.py", line 26, in checkout
    return apply_discount(self, percent)
  File "/venv/lib/python3.12/site-packages/shop/pricing.py", line 11, in apply_discount
    average = subtotal(cart) / len(cart.items)
ZeroDivisionError: division by zero
'''

BEHAVIOUR = '''\
Quantities are lost when a cart is written to disk

After saving a cart to a JSON file and loading it again, every line item comes back with
quantity 1. The file that gets written has no quantity field at all.
'''


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    embedder = MiniLMEmbedder(threads=2)
    embedder.model()
    return embedder


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shop")
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    for args in (["init", "-q"], ["add", "."],
                 ["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "shop"]):
        subprocess.run(["git", "-C", str(root), *args], check=True)
    return root


def test_traceback_points_at_the_deepest_frame(repo: Path, minilm: MiniLMEmbedder,
                                               tmp_path: Path) -> None:
    result = locate(repo, TRACEBACK, index_dir=tmp_path / "idx", embedder=minilm, top=5)
    assert result.files[0].path == "src/shop/pricing.py"
    assert result.functions[0].qualname == "shop.pricing.apply_discount"
    assert result.functions[0].start_line == 8
    assert "in traceback at src/shop/pricing.py:11" in result.functions[0].reasons
    assert "named in issue" in result.files[0].reasons
    assert "shop.cart.Cart.checkout" in [f.qualname for f in result.functions[:3]]


def test_behaviour_description_finds_the_code_by_meaning(repo: Path, minilm: MiniLMEmbedder,
                                                         tmp_path: Path) -> None:
    result = locate(repo, BEHAVIOUR, index_dir=tmp_path / "idx", embedder=minilm, top=5)
    assert result.files[0].path == "src/shop/storage.py"
    assert {"shop.storage.save_cart", "shop.storage.load_cart"} <= {
        f.qualname for f in result.functions[:5]}
    reasons = result.files[0].reasons
    assert any(r.startswith("bm25 #") for r in reasons)
    assert any(r.startswith("dense #") for r in reasons)


def test_tests_are_left_out_unless_asked_for(repo: Path, minilm: MiniLMEmbedder,
                                             tmp_path: Path) -> None:
    text = "test_saved_cart_loads_back_with_quantities fails: quantity comes back as 1"
    default = locate(repo, text, index_dir=tmp_path / "idx", embedder=minilm)
    assert not any(f.path.startswith("tests/") for f in default.files)
    assert not any(f.path.startswith("tests/") for f in default.functions)
    with_tests = locate(repo, text, index_dir=tmp_path / "idx", embedder=minilm,
                        include_tests=True)
    assert with_tests.files[0].path == "tests/test_storage.py"


def test_pack_context_fits_the_budget(repo: Path, minilm: MiniLMEmbedder, tmp_path: Path) -> None:
    result = locate(repo, TRACEBACK, index_dir=tmp_path / "idx", embedder=minilm)
    context = pack_context(result, 150)
    assert approx_tokens(context) <= 150
    assert context.startswith("# src/shop/pricing.py:8-12 shop.pricing.apply_discount\n")
    assert 'raise ValueError("discount percent out of range")' in context
    roomy = pack_context(result, 5000)
    assert len(roomy) > len(context) and approx_tokens(roomy) <= 5000
    assert roomy.count("def checkout") == 1  # a method inside a packed class is not repeated
    tiny = pack_context(result, 10)
    assert 0 < len(tiny) <= 40 and tiny.startswith("# src/shop/pricing.py")


def test_own_call_edges_resolve_imports_and_self(repo: Path, minilm: MiniLMEmbedder,
                                                 tmp_path: Path) -> None:
    index = build_index(repo, tmp_path / "idx", minilm)
    names = [c.qualname for c in index.chunks]
    edges = {(names[s], names[d]) for s, d, _ in chunk_edges(index.chunks)}
    assert ("shop.cart.Cart.checkout", "shop.pricing.apply_discount") in edges
    assert ("shop.pricing.apply_discount", "shop.pricing.subtotal") in edges
    assert ("shop.storage.load_cart", "shop.cart.Cart.add") in edges
    assert ("shop", "shop.cart.Cart") in edges  # `from .cart import Cart` in __init__


def test_knowledge_graph_edges_from_digestion(repo: Path, minilm: MiniLMEmbedder,
                                              tmp_path: Path) -> None:
    from diffusellm.pipeline.understand.digest.build import digest_repository
    from diffusellm.pipeline.understand.graph import KnowledgeGraph

    db = tmp_path / "graph.sqlite"
    digest_repository(repo, db)
    index = build_index(repo, tmp_path / "idx", minilm)
    names = [c.qualname for c in index.chunks]
    with KnowledgeGraph(db) as graph:
        edges = {(names[s], names[d]) for s, d, _ in knowledge_graph_edges(index.chunks, graph)}
    assert ("shop.cart.Cart.checkout", "shop.pricing.apply_discount") in edges
    result = locate(repo, TRACEBACK, index_dir=tmp_path / "idx", embedder=minilm, graph_db=db)
    assert result.functions[0].qualname == "shop.pricing.apply_discount"


def test_similar_functions_find_a_near_duplicate(repo: Path, minilm: MiniLMEmbedder,
                                                 tmp_path: Path) -> None:
    body = '''def cart_total(cart) -> float:
    return sum(line.unit_price * line.quantity for line in cart.items)
'''
    hits = find_similar_functions("def cart_total(cart) -> float", body, repo=repo,
                                  index_dir=tmp_path / "idx", embedder=minilm, top=3)
    assert hits[0].qualname == "shop.pricing.subtotal"
    assert "same signature" in hits[0].reasons
    assert hits[0].cosine > 0.5
    assert all(not h.path.startswith("tests/") for h in hits)


def test_locate_command_returns_the_cli_json_shape(repo: Path, tmp_path: Path) -> None:
    issue = tmp_path / "issue.txt"
    issue.write_text(TRACEBACK)
    out = locate_command(repo, issue, 3, False, tmp_path / "state")
    assert set(out) == {"files", "functions"}
    assert set(out["files"][0]) == {"path", "score", "reasons"}
    assert set(out["functions"][0]) == {"path", "qualname", "start_line", "end_line", "score"}
    assert out["files"][0]["path"] == "src/shop/pricing.py"
    assert len(out["functions"]) == 3
    with pytest.raises(InputError, match="cannot read the issue text"):
        locate_command(repo, tmp_path / "missing.txt", 3, False, tmp_path / "state")


def test_empty_issue_text_is_refused(repo: Path, minilm: MiniLMEmbedder, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="issue text is empty"):
        locate(repo, "  \n", index_dir=tmp_path / "idx", embedder=minilm)
