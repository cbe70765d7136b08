"""Phase 5 scaffolds: a function's fixed lines and its holes, rendering fills, masking failing lines.

A `Draft` is fixed text and `Slot`s (a `Hole` plus the indentation its lines take). The denoiser
(or the LLM filler) sees `scaffold()`; `render()` puts the fills back, re-indented. When checks fail
on some lines of the written function, `mask_lines` turns the statements on those lines into holes
and keeps every other line fixed, so only the failing regions are generated again.
"""

from __future__ import annotations

import ast
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from diffusellm.models.base import Hole, Scaffold

MIN_HOLE_TOKENS = 64
MAX_HOLE_TOKENS = 1024
_FENCE = re.compile(r"^\s*```[a-zA-Z]*\s*$")
_TOP_LEVEL = re.compile(r"^(def |async def |class |@|if __name__)")


@dataclass(frozen=True)
class Slot:
    """A hole and the indentation of the lines that fill it."""

    hole: Hole
    indent: str


@dataclass(frozen=True)
class Draft:
    """A function's text as fixed pieces and slots, in order; fixed pieces end with a newline."""

    pieces: tuple[str | Slot, ...]

    @property
    def slots(self) -> list[Slot]:
        """The slots, in order."""
        return [p for p in self.pieces if isinstance(p, Slot)]

    def scaffold(self) -> Scaffold:
        """What a `Denoiser` fills: the fixed text and the holes."""
        return [p.hole if isinstance(p, Slot) else p for p in self.pieces]

    def render(self, fills: Sequence[str]) -> str:
        """The function's text with each hole's fill, re-indented to its slot."""
        return "".join(self._rendered(fills))

    def _rendered(self, fills: Sequence[str]) -> list[str]:
        out: list[str] = []
        fill_iter = iter(fills)
        for piece in self.pieces:
            out.append(reindent(next(fill_iter, ""), piece.indent) if isinstance(piece, Slot) else piece)
        return out

    def hole_spans(self, fills: Sequence[str]) -> list[tuple[int, int]]:
        """The 1-based line range each hole's fill occupies in `render(fills)`."""
        spans: list[tuple[int, int]] = []
        line = 1
        for piece, text in zip(self.pieces, self._rendered(fills), strict=True):
            count = text.count("\n")
            if isinstance(piece, Slot):
                spans.append((line, line + max(count, 1) - 1))
            line += count
        return spans

    def keep_only(self, fills: Sequence[str], holes: set[int]) -> Draft:
        """This draft with every hole not in `holes` replaced by its fill, as fixed text."""
        pieces: list[str | Slot] = []
        slot_index = 0
        for piece, text in zip(self.pieces, self._rendered(fills), strict=True):
            if isinstance(piece, Slot):
                pieces.append(piece if slot_index in holes else text)
                slot_index += 1
            else:
                pieces.append(piece)
        return Draft(tuple(pieces))

    def hole_for_line(self, fills: Sequence[str], line: int) -> int | None:
        """Which hole (by index) the rendered line `line` belongs to; None for a fixed line."""
        for index, (start, end) in enumerate(self.hole_spans(fills)):
            if start <= line <= end:
                return index
        return None


def reindent(text: str, indent: str) -> str:
    """A fill's lines, dedented, then indented by `indent`; always ends with one newline."""
    lines = textwrap.dedent(text.expandtabs(4)).strip("\n").splitlines()
    if not any(ln.strip() for ln in lines):
        return f"{indent}pass\n"
    return "".join(f"{indent}{ln}".rstrip() + "\n" for ln in lines)


def clean_fill(text: str, header: str = "") -> str:
    """A model's answer for a body hole without fences, echoed header lines or trailing extra code."""
    lines = [ln for ln in text.replace("\r\n", "\n").split("\n") if not _FENCE.match(ln)]
    def_line = next((ln.strip() for ln in header.splitlines() if ln.lstrip().startswith(("def ", "async def "))), None)
    if def_line is not None:
        echoed = [i for i, ln in enumerate(lines) if ln.strip() == def_line]
        lines = lines[echoed[0] + 1 :] if echoed else lines
    lines = _before_top_level(lines)  # an indented body ends where code at column 0 starts
    body = _before_top_level(textwrap.dedent("\n".join(lines).expandtabs(4)).strip("\n").splitlines())
    return "\n".join(body).rstrip() + "\n" if body else ""


def _before_top_level(lines: list[str]) -> list[str]:
    """The lines up to the first `def`/`class`/decorator at column 0 after the first line of code."""
    seen_code = False
    for index, ln in enumerate(lines):
        if seen_code and _TOP_LEVEL.match(ln):
            return lines[:index]
        seen_code = seen_code or bool(ln.strip())
    return lines


def _indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _function_node(source: str) -> ast.FunctionDef | ast.AsyncFunctionDef:
    tree = ast.parse(source)
    func = next((n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)), None)
    if func is None:
        raise ValueError("no function definition in the source")
    return func


def _docstring_end(func: ast.FunctionDef | ast.AsyncFunctionDef) -> int | None:
    """The last line of the function's docstring, when it has one."""
    first = func.body[0]
    value = first.value if isinstance(first, ast.Expr) else None
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        return first.end_lineno or first.lineno
    return None


def _statements(func: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.stmt]:
    """The body's statements after the docstring."""
    return func.body[1:] if _docstring_end(func) is not None else list(func.body)


def hole_tokens(text: str) -> int:
    """Room for regenerating `text`: twice its size, within bounds."""
    return max(MIN_HOLE_TOKENS, min(MAX_HOLE_TOKENS, 2 * ((len(text) + 3) // 4)))


def body_draft(source: str, tokens: int) -> Draft:
    """The function with its header (decorators, signature, docstring) fixed and its body one hole."""
    text = textwrap.dedent(source)
    func = _function_node(text)
    lines = text.splitlines(keepends=True)
    doc_end = _docstring_end(func)
    body_line = func.body[0].lineno
    if body_line == func.lineno:  # `def f(): return x` on one line: rebuild the header
        bare = ast.FunctionDef(
            name=func.name,
            args=func.args,
            body=[ast.Pass()],
            decorator_list=func.decorator_list,
            returns=func.returns,
            type_comment=None,
        )
        header = ast.unparse(bare).rsplit("\n", 1)[0] + "\n"
        return Draft((header, Slot(Hole(tokens), "    ")))
    end = doc_end if doc_end is not None else body_line - 1
    header = "".join(lines[:end])
    return Draft((header, Slot(Hole(tokens), _indent_of(lines[body_line - 1]))))


def _innermost(stmts: Sequence[ast.stmt], line: int) -> ast.stmt | None:
    """The innermost statement spanning `line`; a compound statement when `line` is its header."""
    for stmt in stmts:
        end = stmt.end_lineno or stmt.lineno
        if not stmt.lineno <= line <= end:
            continue
        children = [c for name in ("body", "orelse", "finalbody") for c in getattr(stmt, name, [])]
        children += [c for h in getattr(stmt, "handlers", []) for c in h.body]
        inner = _innermost(children, line)
        return inner if inner is not None else stmt
    return None


def mask_lines(source: str, failing: Sequence[int]) -> Draft:
    """A draft of `source` (one function) where the statements on the failing lines are holes.

    Lines are 1-based within `source`. A failing line in the header (signature, docstring) masks
    the whole body: the fault is in how the body fits the fixed signature.
    """
    text = textwrap.dedent(source)
    func = _function_node(text)
    body = _statements(func)
    if not body:
        return body_draft(text, MIN_HOLE_TOKENS * 4)
    lines = text.splitlines(keepends=True)
    first_body = body[0].lineno
    ranges: list[tuple[int, int]] = []
    for line in sorted(set(failing)):
        stmt = _innermost(body, line) if line >= first_body else None
        if stmt is None:
            ranges = [(first_body, body[-1].end_lineno or body[-1].lineno)]
            break
        ranges.append((stmt.lineno, stmt.end_lineno or stmt.lineno))
    return _draft_from_ranges(lines, _merge(ranges))


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _draft_from_ranges(lines: list[str], ranges: list[tuple[int, int]]) -> Draft:
    pieces: list[str | Slot] = []
    cursor = 1
    for start, end in ranges:
        if start > cursor:
            pieces.append("".join(lines[cursor - 1 : start - 1]))
        old = "".join(lines[start - 1 : end])
        pieces.append(Slot(Hole(hole_tokens(old)), _indent_of(lines[start - 1])))
        cursor = end + 1
    if cursor <= len(lines):
        pieces.append("".join(lines[cursor - 1 :]))
    return Draft(tuple(p for p in pieces if p != ""))


def syntax_error_line(source: str) -> tuple[int, str] | None:
    """(line, message) of the first syntax error in a function's source, or None."""
    try:
        ast.parse(textwrap.dedent(source))
    except SyntaxError as exc:
        return exc.lineno or 1, exc.msg
    return None
