"""Phase 3, spec side: the public YAML `Spec` contract, read from a file or an issue's block."""

from __future__ import annotations

import ast
import keyword
import re
import textwrap
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from diffusellm.errors import SpecError

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_DOTTED = rf"^{_IDENT}(\.{_IDENT})*$"
YAML_BLOCK = re.compile(r"```ya?ml[ \t]*\n(.*?)\n```", re.DOTALL)
"""An issue's ```yaml spec block (its body is group 1)."""
YAML_FENCE = re.compile(r"^```ya?ml[ \t]*$", re.MULTILINE)
"""The opening fence of a ```yaml block: whether a text carries a spec at all."""


class _Op(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    target: Annotated[str, Field(pattern=_DOTTED, max_length=300)]


def _not_keyword(value: str) -> str:
    if keyword.iskeyword(value):
        raise ValueError(f"{value!r} is a Python keyword and cannot be a name")
    return value


class RenameSymbol(_Op):
    """Rename a function, class, method or module-level name everywhere it is used."""

    op: Literal["rename_symbol"]
    new_name: Annotated[str, Field(pattern=rf"^{_IDENT}$", max_length=100)]

    _check_new_name = field_validator("new_name")(_not_keyword)


class AddParameter(_Op):
    """Add a parameter with a default to a function or method."""

    op: Literal["add_parameter"]
    name: Annotated[str, Field(pattern=rf"^{_IDENT}$", max_length=100)]
    default: Annotated[str, Field(max_length=500)]
    kind: Literal["keyword_only", "positional_or_keyword"] = "keyword_only"
    annotation: Annotated[str | None, Field(max_length=200)] = None
    doc: Annotated[str | None, Field(max_length=300)] = None
    """Docstring text for the parameter, when the docstring has a parameter section."""

    _check_name = field_validator("name")(_not_keyword)

    @field_validator("default")
    @classmethod
    def _default_is_expression(cls, value: str) -> str:
        try:
            compile(value, "<default>", "eval")
        except SyntaxError as exc:
            raise ValueError(
                f"default must be a Python expression, got {value!r} ({exc.msg})"
            ) from exc
        return value


class RemoveParameter(_Op):
    """Remove an unused parameter and drop it from every call site."""

    op: Literal["remove_parameter"]
    name: Annotated[str, Field(pattern=rf"^{_IDENT}$", max_length=100)]


class MoveSymbol(_Op):
    """Move a module-level function or class to another module, updating imports."""

    op: Literal["move_symbol"]
    to_module: Annotated[str, Field(pattern=_DOTTED, max_length=300)]


_CODE_MAX = 20_000
_TEST_PATH = r"^([A-Za-z0-9_.-]+/)*(test_[A-Za-z0-9_]+|[A-Za-z0-9_]+_test)\.py$"
Code = Annotated[str | None, Field(max_length=_CODE_MAX)]
Instruction = Annotated[str | None, Field(max_length=2000)]


def _one_function(source: str, what: str) -> ast.FunctionDef | ast.AsyncFunctionDef:
    """The single function definition `source` holds, after any leading imports."""
    try:
        tree = ast.parse(textwrap.dedent(source))
    except SyntaxError as exc:
        raise ValueError(f"{what} is not valid Python: line {exc.lineno}: {exc.msg}") from None
    funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    others = [n for n in tree.body if not isinstance(n, ast.Import | ast.ImportFrom)]
    if len(funcs) != 1 or len(others) != 1:
        raise ValueError(f"{what} must hold exactly one function definition (imports may precede it)")
    return funcs[0]


def _check_body(body: str) -> None:
    indented = textwrap.indent(textwrap.dedent(body), "    ")
    try:
        ast.parse(f"def _f():\n{indented}\n")
    except SyntaxError as exc:
        raise ValueError(f"body is not valid Python: line {exc.lineno}: {exc.msg}") from None


class _Generative(_Op):
    """An operation whose code is given (`source`) or written by the model from `instruction`."""

    source: Code = None
    """The full new definition (`def ...`), for a generative operation whose code is known."""
    instruction: Instruction = None
    """What the code should do, in words, when the model is to write it."""

    @property
    def needs_code(self) -> bool:
        """True when the code is still to be generated."""
        return self.source is None


class EditFunction(_Generative):
    """Replace a function or method's whole definition (or only its body) with new code."""

    op: Literal["edit_function"]
    body: Code = None
    """The new body only; the signature and decorators stay."""
    signature_may_change: bool = False

    @property
    def needs_code(self) -> bool:
        """True when neither a new definition nor a new body is given."""
        return self.source is None and self.body is None

    @model_validator(mode="after")
    def _code_or_instruction(self) -> EditFunction:
        if self.source is not None and self.body is not None:
            raise ValueError("give either source (the whole definition) or body, not both")
        if self.needs_code and not self.instruction:
            raise ValueError("give source, body or an instruction for the model")
        if self.source is not None:
            func = _one_function(self.source, "source")
            if func.name != self.target.rsplit(".", 1)[-1]:
                raise ValueError(f"source defines {func.name!r}, not the target's name")
        if self.body is not None:
            _check_body(self.body)
        return self


class AddFunction(_Generative):
    """Add a new function (target: its qualified name) to an existing module or class."""

    op: Literal["add_function"]
    allow_similar: bool = False
    """Add it even when a function with the same signature and name already exists."""

    @model_validator(mode="after")
    def _code_or_instruction(self) -> AddFunction:
        if self.source is None and not self.instruction:
            raise ValueError("give source or an instruction for the model")
        if self.source is not None:
            func = _one_function(self.source, "source")
            if func.name != self.target.rsplit(".", 1)[-1]:
                raise ValueError(f"source defines {func.name!r}, not the target's name")
        return self


class AddTest(_Generative):
    """Add a test function for `target` to a test file (created when missing)."""

    op: Literal["add_test"]
    path: Annotated[str, Field(pattern=_TEST_PATH, max_length=300)]

    @model_validator(mode="after")
    def _code_or_instruction(self) -> AddTest:
        if self.source is None and not self.instruction:
            raise ValueError("give source or an instruction for the model")
        if ".." in self.path.split("/"):
            raise ValueError("path must stay inside the repository")
        if self.source is not None and not _one_function(self.source, "source").name.startswith("test"):
            raise ValueError("a test function's name must start with test")
        return self


GenerativeOperation = EditFunction | AddFunction | AddTest
Operation = Annotated[
    RenameSymbol | AddParameter | RemoveParameter | MoveSymbol | EditFunction | AddFunction | AddTest,
    Field(discriminator="op"),
]
OPERATION_KINDS = (
    "rename_symbol",
    "add_parameter",
    "remove_parameter",
    "move_symbol",
    "edit_function",
    "add_function",
    "add_test",
)
GENERATIVE_KINDS = ("edit_function", "add_function", "add_test")


class Acceptance(BaseModel):
    """Extra checks the change must pass."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tests: Annotated[list[Annotated[str, Field(max_length=300)]], Field(max_length=50)] = []


class Spec(BaseModel):
    """A validated request: what to change and how to know it is done."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=20_000)] = ""
    operations: Annotated[list[Operation], Field(min_length=1, max_length=50)]
    acceptance: Acceptance = Acceptance()

    @property
    def needs_model(self) -> bool:
        """True when some operation's code is still to be written by a language model."""
        return any(isinstance(op, GenerativeOperation) and op.needs_code for op in self.operations)


def _op_name_at(data: Any, index: int) -> str:
    """The `op` value of operation `index` in raw spec data, or "" when there is none."""
    try:
        return str(data["operations"][index]["op"])
    except (KeyError, IndexError, TypeError):
        return ""


def _describe_location(loc: tuple[int | str, ...], data: Any) -> str:
    """Turn a pydantic error location into `operations[0] (rename_symbol).new_name`."""
    parts: list[str] = []
    items = list(loc)
    if len(items) >= 2 and items[0] == "operations" and isinstance(items[1], int):
        index = items[1]
        op_name = _op_name_at(data, index)
        parts.append(f"operations[{index}]" + (f" ({op_name})" if op_name else ""))
        items = [i for i in items[2:] if i not in OPERATION_KINDS]
    parts.extend(str(i) for i in items)
    return ".".join(parts) or "(spec)"


def parse_spec(data: Any, *, source: str = "spec") -> Spec:
    """Validate already-loaded YAML data into a `Spec`, with errors naming field and operation."""
    if not isinstance(data, dict):
        raise SpecError(
            f"{source}: a spec must be a YAML mapping with title and operations, "
            f"got {type(data).__name__}",
            hint="see docs/SPEC.md for the format",
        )
    try:
        return Spec.model_validate(data)
    except ValidationError as exc:
        lines = [f"  {_describe_location(e['loc'], data)}: {e['msg']}" for e in exc.errors()]
        raise SpecError(
            f"{source}: invalid spec\n" + "\n".join(lines),
            hint=f"allowed operations: {', '.join(OPERATION_KINDS)}; see docs/SPEC.md",
        ) from None


def load_spec_text(text: str, *, source: str = "spec") -> Spec:
    """Read a spec from YAML text, or from the first fenced ```yaml block of Markdown text."""
    text = text.replace("\r\n", "\n")  # GitHub issue bodies usually arrive with CRLF line endings
    match = YAML_BLOCK.search(text)
    body = match.group(1) if match else text
    try:
        data = yaml.safe_load(body)
    except yaml.YAMLError as exc:
        raise SpecError(
            f"{source}: not valid YAML: {exc}", hint="check indentation and quoting"
        ) from None
    return parse_spec(data, source=source)


def load_spec_file(path: Path) -> Spec:
    """Read a spec from a YAML file or a Markdown issue file with a ```yaml block."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(
            f"spec file not found: {path}", hint="pass the path of a YAML spec"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read spec file {path}: {exc}") from None
    return load_spec_text(text, source=str(path))


def spec_yaml(spec: Spec) -> str:
    """A spec as the YAML a person could have written (and the admin page edits)."""
    data = spec.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
