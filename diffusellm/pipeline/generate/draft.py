"""Phase 5 drafting: the scaffold each generative operation starts from, and its fills as they change."""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from diffusellm.errors import OperationError
from diffusellm.models.base import Denoiser, Hole, TextGenerator
from diffusellm.pipeline.generate.prompts import generation_context, scaffold_messages
from diffusellm.pipeline.generate.regions import WrittenFunction, written_function
from diffusellm.pipeline.generate.scaffold import Draft, Slot, body_draft, clean_fill, hole_tokens, mask_lines
from diffusellm.pipeline.project import Project
from diffusellm.pipeline.spec import AddFunction, AddTest, GenerativeOperation, Operation
from diffusellm.pipeline.understand.style.profile import StyleProfile

HEADER_TOKENS = 96
_WORD = re.compile(r"[a-z0-9]+")


@dataclass
class Work:
    """One generative operation's code in the making: its draft, the current fills, where it landed."""

    index: int
    """The operation's position in its plan."""
    op: GenerativeOperation
    draft: Draft
    fills: list[str] = field(default_factory=lambda: [])
    written: WrittenFunction | None = None
    regenerated: str = ""

    @property
    def header(self) -> str:
        """The fixed text before the first hole (the signature and docstring, usually)."""
        first = self.draft.pieces[0] if self.draft.pieces else ""
        return first if isinstance(first, str) else ""

    def code(self) -> str:
        """The function as it stands."""
        return self.draft.render(self.fills)

    def operation(self) -> Operation:
        """The operation with this code as its `source` (validated again by the spec contract)."""
        data = {**self.op.model_dump(exclude_none=True), "source": self.code()}
        try:
            return type(self.op).model_validate(data)
        except ValueError as exc:
            raise OperationError(f"the generated code for {self.op.target} is not usable: {exc}") from None

    def fill(self, filler: Denoiser, nearby: str, errors: Sequence[str], temperature: float, seed: int) -> None:
        """Fill every hole of the draft; earlier fills of fixed regions stay as they are."""
        context = generation_context(self.op.instruction or "", nearby, errors)
        raw = filler.fill(self.draft.scaffold(), context=context, temperature=temperature, seed=seed)
        self.fills = [clean_fill(text, self.header) for text in raw]

    def refill_holes_at(self, lines: Sequence[int]) -> None:
        """Keep every hole but those whose fill holds one of `lines` (all of them when none does)."""
        holes = {h for line in lines if (h := self.draft.hole_for_line(self.fills, line)) is not None}
        holes = holes or set(range(len(self.draft.slots)))
        self.draft = self.draft.keep_only(self.fills, holes)
        self.regenerated = f"hole(s) {', '.join(str(h + 1) for h in sorted(holes))} of {self.op.target}"

    def mask(self, lines: set[int], body_tokens: int) -> None:
        """Turn the failing lines of the written function into holes (its whole body when `lines` is empty)."""
        source = self.written.text if self.written is not None else self.code()
        if lines:
            self.draft = mask_lines(source, sorted(lines))
            self.regenerated = f"lines {_ranges(lines)} of {self.op.target}"
        else:
            self.draft = body_draft(source, max(body_tokens, hole_tokens(source)))
            self.regenerated = f"whole body of {self.op.target}"


def _ranges(lines: set[int]) -> str:
    ordered = sorted(lines)
    return ", ".join(str(n) for n in ordered[:8]) + ("…" if len(ordered) > 8 else "")


def start_work(
    index: int,
    op: GenerativeOperation,
    project: Project,
    llm: TextGenerator,
    profile: StyleProfile,
    body_tokens: int,
    nearby: str,
) -> Work:
    """The first draft of an operation: header fixed, body a hole."""
    if isinstance(op, AddTest):
        header = f"def {test_name(op)}() -> None:\n"
        return Work(index, op, Draft((header, Slot(Hole(body_tokens), "    "))))
    if isinstance(op, AddFunction):
        header = draft_header(llm, op, profile, nearby)
        return Work(index, op, Draft((header, Slot(Hole(body_tokens), "    "))))
    current = written_function(project, op)
    if current is None:
        raise OperationError(f"cannot find {op.target} to edit", hint="check the target's qualified name")
    return Work(index, op, body_draft(current.text, max(body_tokens, hole_tokens(current.text))), written=current)


def test_name(op: AddTest) -> str:
    """`test_<target>_<first words of the instruction>`."""
    words = _WORD.findall((op.instruction or "").lower())[:4]
    name = "_".join([op.target.rsplit(".", 1)[-1].lower(), *words])
    return f"test_{name}"[:60].rstrip("_")


def draft_header(llm: TextGenerator, op: AddFunction, profile: StyleProfile, nearby: str) -> str:
    """The `def` line and docstring of a new function, from the model; a bare `def name():` when its
    answer does not parse or names another function."""
    name = op.target.rsplit(".", 1)[-1]
    reply = llm.generate(
        scaffold_messages(op.target, op.instruction or "", nearby, profile), max_new_tokens=HEADER_TOKENS
    )
    header = _header_from(reply, name)
    return header or f"def {name}():\n"


def _header_from(text: str, name: str) -> str | None:
    raw = text.replace("\r\n", "\n").splitlines(keepends=True)
    start = next((i for i, ln in enumerate(raw) if ln.lstrip().startswith(f"def {name}(")), None)
    if start is None:
        return None
    indent = len(raw[start]) - len(raw[start].lstrip())
    lines = [ln[indent:] if not ln[:indent].strip() else ln.lstrip() for ln in raw[start:]]
    start = 0
    for end in range(start + 1, len(lines) + 1):
        candidate = "".join(lines[start:end])
        if _parses(candidate):
            return _with_docstring(candidate, lines[end:])
    return None


def _parses(header: str) -> bool:
    try:
        ast.parse(header + "    pass\n")
    except SyntaxError:
        return False
    return True


def _with_docstring(header: str, rest: Sequence[str]) -> str:
    """The header plus the docstring that follows it in the answer, when there is a whole one."""
    for end in range(1, min(len(rest), 12) + 1):
        candidate = header + "".join(rest[:end])
        block = "".join(rest[:end]).strip()
        if block.startswith(('"""', "'''")) and len(block) > 5 and block.endswith(block[:3]) and _parses(candidate):
            return candidate
    return header
