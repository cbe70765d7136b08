"""Phase 2 duplicate detection: a trie of normalised function signatures, searched with one edit.

A signature's key is its parameters in order, each as (kind, name, annotation), then its return
annotation; a method's `self`/`cls` is dropped so methods and functions compare. The trie is
derived data: it is rebuilt from the knowledge graph's symbols table (`from_graph`).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from diffusellm.errors import InputError
from diffusellm.pipeline.understand.graph import KnowledgeGraph

Token = tuple[str, str, str]
"""(kind, name, annotation); kind is arg, *, kw, ** or -> (the return annotation)."""

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_EXACT_WEIGHT, _NEAR_WEIGHT = 1.0, 0.7


def signature_key(signature: str) -> tuple[Token, ...]:
    """Normalised key of `(a, b: int = 1) -> str` (a `def name(...)` line is accepted too).

    Raises InputError when the text is not a Python parameter list.
    """
    text = signature.strip().removesuffix(":").strip()
    if text.startswith(("def ", "async def ")):
        text = text[text.index("(") :] if "(" in text else text
    if not text.startswith("("):
        text = f"({text})"
    try:
        tree = ast.parse(f"def _f{text}: pass")
    except SyntaxError:
        raise InputError(
            f"not a Python signature: {signature!r}",
            hint="write a parameter list, e.g. '(path: Path, *, strict: bool = False) -> str'",
        ) from None
    func = tree.body[0]
    assert isinstance(func, ast.FunctionDef)
    return _tokens(func.args, func.returns)


def _tokens(args: ast.arguments, returns: ast.expr | None) -> tuple[Token, ...]:
    def one(kind: str, arg: ast.arg) -> Token:
        return (kind, arg.arg.lower(), _annotation(arg.annotation))

    positional = [*args.posonlyargs, *args.args]
    if positional and positional[0].arg in ("self", "cls"):
        positional = positional[1:]
    tokens = [one("arg", a) for a in positional]
    if args.vararg is not None:
        tokens.append(one("*", args.vararg))
    tokens.extend(one("kw", a) for a in args.kwonlyargs)
    if args.kwarg is not None:
        tokens.append(one("**", args.kwarg))
    tokens.append(("->", "", _annotation(returns)))
    return tuple(tokens)


def _annotation(node: ast.expr | None) -> str:
    if node is None:
        return ""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value.replace(" ", "")  # a string annotation means the same type
    return ast.unparse(node).replace(" ", "")


def name_tokens(name: str) -> frozenset[str]:
    """Lower-case words of an identifier: `parseHTTPHeader_v2` → {parse, http, header, v, 2}."""
    return frozenset(w.lower() for w in _WORD.findall(name))


def _substitution(a: Token, b: Token) -> int:
    """0 equal; 1 renamed or retyped parameter (same kind) or other return type; else 2."""
    if a == b:
        return 0
    if a[0] == b[0] and (a[0] == "->" or a[1] == b[1] or a[2] == b[2]):
        return 1
    return 2


@dataclass(slots=True)
class _TrieNode:
    children: dict[Token, _TrieNode] = field(default_factory=lambda: {})
    entries: list[tuple[str, frozenset[str]]] = field(default_factory=lambda: [])


class SignatureTrie:
    """Existing functions by signature, for "does this function already exist?" questions."""

    def __init__(self) -> None:
        self._root = _TrieNode()
        self.size = 0

    @classmethod
    def from_symbols(cls, rows: Iterable[tuple[str, str, str]]) -> SignatureTrie:
        """Build from (qualname, name, signature) rows; unparsable signatures are left out."""
        trie = cls()
        for qualname, name, signature in rows:
            try:
                trie.add(qualname, name, signature)
            except InputError:
                continue
        return trie

    @classmethod
    def from_graph(cls, graph: KnowledgeGraph) -> SignatureTrie:
        """Rebuild from the functions and methods a knowledge graph holds."""
        return cls.from_symbols(graph.signatures())

    def add(self, qualname: str, name: str, signature: str) -> None:
        """Insert one function (InputError when its signature does not parse)."""
        node = self._root
        for token in signature_key(signature):
            node = node.children.setdefault(token, _TrieNode())
        node.entries.append((qualname, name_tokens(name)))
        self.size += 1

    def similar(self, signature: str, name: str, max_results: int = 5) -> list[tuple[str, float]]:
        """Functions with the same signature (score ≥ 0.85), then those one edit away (a
        parameter more or fewer, renamed or retyped, or another return type; score ≤ 0.7).

        Within each group, functions whose names share more words with `name` rank higher.
        """
        query = signature_key(signature)
        words = name_tokens(name)
        found: list[tuple[str, float]] = []
        first_row = list(range(len(query) + 1))
        for child_token, child in self._root.children.items():
            self._search(child, child_token, query, first_row, words, found)
        best: dict[str, float] = {}
        for qualname, score in found:  # a function defined twice (if/else) is listed once
            best[qualname] = max(score, best.get(qualname, 0.0))
        return sorted(best.items(), key=lambda item: (-item[1], item[0]))[:max_results]

    def _search(self, node: _TrieNode, token: Token, query: tuple[Token, ...],
                above: list[int], words: frozenset[str], found: list[tuple[str, float]]) -> None:
        """Levenshtein over tokens, one trie row at a time; branches over one edit are cut."""
        row = [above[0] + 1]
        for col in range(1, len(query) + 1):
            row.append(min(row[col - 1] + 1, above[col] + 1,
                           above[col - 1] + _substitution(token, query[col - 1])))
        if row[-1] <= 1:
            weight = _EXACT_WEIGHT if row[-1] == 0 else _NEAR_WEIGHT
            for qualname, their_words in node.entries:
                overlap = len(words & their_words) / len(words | their_words) if words else 0.0
                found.append((qualname, round(weight * (0.85 + 0.15 * overlap), 4)))
        if min(row) <= 1:
            for child_token, child in node.children.items():
                self._search(child, child_token, query, row, words, found)
