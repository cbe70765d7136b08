"""Phase 3/4 structured output: the "draft" operations a model may answer with, as a JSON schema whose
targets are the repository's real qualnames and whose new names follow the profiled conventions."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, create_model

from diffusellm.errors import SpecError
from diffusellm.pipeline.locate.context import Localised
from diffusellm.pipeline.normalise.names import naming_pattern
from diffusellm.pipeline.normalise.schema import schema_for
from diffusellm.pipeline.spec import (
    AddFunction,
    AddParameter,
    AddTest,
    EditFunction,
    MoveSymbol,
    Operation,
    RemoveParameter,
    RenameSymbol,
)
from diffusellm.pipeline.understand.style.naming import DEFAULT_NAMING
from diffusellm.pipeline.understand.style.profile import IdentifierKind, StyleProfile

MAX_DRAFT_OPS = 3
"""Small models ramble inside long strings and lists: every bound here is as tight as it can be."""
INSTRUCTION_CHARS = 160
_DOTTED = r"^[A-Za-z_][A-Za-z0-9_]{0,40}(\.[A-Za-z_][A-Za-z0-9_]{0,40}){0,6}$"
"""A module path with bounded parts: nested unbounded repeats make grammars explode."""
M = TypeVar("M", bound=BaseModel)


NAME_LENGTH = 64


def name_pattern(profile: StyleProfile, kind: IdentifierKind) -> str:
    """The regex a new name of `kind` must match in this repository: its profiled convention,
    never a keyword, at most 64 characters (`diffusellm.pipeline.normalise.names`)."""
    return naming_pattern(profile.naming.get(kind, DEFAULT_NAMING[kind]), NAME_LENGTH)


def _text(limit: int) -> Any:
    return Annotated[str, Field(max_length=limit)]


def _member_of(names: Sequence[str]) -> Callable[[str], str]:
    allowed = frozenset(names)

    def check(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"{value!r} is not one of the repository's candidates")
        return value

    return check


def _choice(names: Sequence[str]) -> Any:
    """A string that must be one of `names` (an enum in the schema, checked again on parsing)."""
    return Annotated[
        str,
        Field(max_length=300, json_schema_extra={"enum": list(names)}),
        AfterValidator(_member_of(names)),
    ]


def named_field(pattern: str) -> Any:
    return Annotated[str, Field(pattern=pattern, max_length=NAME_LENGTH)]


class _DraftOp(BaseModel):
    model_config = ConfigDict(extra="forbid")

    op: str


class _DraftBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    operations: list[Any]


class DraftSpec(_DraftBase):
    """What the normaliser asks the model for: a spec in outline, how sure it is, and a question.

    No description: the issue itself is the spec's description."""

    title: str
    confidence: float
    question: str


class DraftPlan(_DraftBase):
    """What the planner asks the model for: one candidate sequence of operations and why."""

    rationale: str


def _variant(kind: str, **fields: Any) -> type[_DraftOp]:
    op_type: Any = Literal[kind]  # pyright: ignore[reportInvalidTypeForm]
    return create_model(f"Draft_{kind}", __base__=_DraftOp, op=(op_type, ...), **fields)


def _variants(loc: Localised, profile: StyleProfile) -> list[type[_DraftOp]]:
    """One draft model per operation the candidates allow; kinds without candidates are left out."""
    instruction = (_text(INSTRUCTION_CHARS), ...)
    functions, methods = loc.of_kind("function"), loc.of_kind("method")
    classes, callables = loc.of_kind("class"), loc.of_kind("function", "method")
    modules = set(loc.modules)
    movable = [
        s.qualname for s in loc.symbols if s.kind in ("function", "class") and s.qualname.rsplit(".", 1)[0] in modules
    ]
    specs: list[tuple[str, Sequence[str], dict[str, Any]]] = [
        ("rename_function", functions, {"new_name": (named_field(name_pattern(profile, "function")), ...)}),
        ("rename_method", methods, {"new_name": (named_field(name_pattern(profile, "method")), ...)}),
        ("rename_class", classes, {"new_name": (named_field(name_pattern(profile, "class")), ...)}),
        (
            "add_parameter",
            callables,
            {
                "name": (named_field(name_pattern(profile, "parameter")), ...),
                "default": (_text(60), ...),
                "annotation": (_text(40), ""),
            },
        ),
        ("remove_parameter", callables, {"name": (named_field(name_pattern(profile, "parameter")), ...)}),
        ("move_symbol", movable, {"to_module": (Annotated[str, Field(pattern=_DOTTED)], ...)}),
        ("edit_function", callables, {"instruction": instruction}),
        ("add_test", callables, {"instruction": instruction}),
    ]
    variants = [_variant(kind, target=(_choice(names), ...), **extra) for kind, names, extra in specs if names]
    if loc.modules:
        variants.append(
            _variant(
                "add_function",
                module=(_choice(loc.modules), ...),
                name=(named_field(name_pattern(profile, "function")), ...),
                instruction=instruction,
            )
        )
    return variants


def _either(left: Any, right: Any) -> Any:
    return left | right


def _operations_field(loc: Localised, profile: StyleProfile, min_items: int) -> tuple[Any, ...]:
    variants = _variants(loc, profile)
    if not variants:
        raise SpecError(
            "the repository has no function, class or module to build a change from",
            hint="digest the repository first, or write the spec as YAML (docs/SPEC.md)",
        )
    union: Any = functools.reduce(_either, variants)
    item: Any = Annotated[union, Field(discriminator="op")]
    return (Annotated[list[item], Field(min_length=min_items, max_length=MAX_DRAFT_OPS)], ...)


def draft_spec_model(loc: Localised, profile: StyleProfile) -> type[DraftSpec]:
    """The normaliser's answer model for this repository's candidates and naming conventions."""
    return create_model(
        "DraftSpec",
        __base__=DraftSpec,
        title=(Annotated[str, Field(min_length=1, max_length=80)], ...),
        operations=_operations_field(loc, profile, 0),
        confidence=(Annotated[float, Field(ge=0.0, le=1.0)], ...),
        question=(_text(160), ...),
    )


def draft_plan_model(loc: Localised, profile: StyleProfile) -> type[DraftPlan]:
    """The planner's answer model: a rationale and 1–5 operations on the candidates."""
    return create_model(
        "DraftPlan",
        __base__=DraftPlan,
        rationale=(_text(200), ...),
        operations=_operations_field(loc, profile, 1),
    )


def json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema, finite for grammar-constrained decoding (`structured.schema_for`:
    bounded strings, lists and patterns, variant tag first), with every `$ref` inlined, since
    constrained decoders differ on references."""
    schema = schema_for(model, max_string=INSTRUCTION_CHARS, max_items=MAX_DRAFT_OPS)
    defs: dict[str, Any] = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            data: dict[str, Any] = node  # pyright: ignore[reportUnknownVariableType]
            if "$ref" in data:
                return inline(defs[str(data["$ref"]).rsplit("/", 1)[-1]])
            return {k: inline(v) for k, v in data.items() if k != "discriminator"}
        if isinstance(node, list):
            return [inline(v) for v in node]  # pyright: ignore[reportUnknownVariableType]
        return node

    result: dict[str, Any] = inline(schema)
    return result


def parse_draft(model: type[M], text: str) -> M:
    """Validate a model's JSON answer; a malformed one is a SpecError saying what was wrong."""
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        raise SpecError(
            f"the model's answer does not fit the draft schema: {problems}",
            hint="try again, or write the spec as YAML (docs/SPEC.md)",
        ) from None


def test_path(loc: Localised, target: str) -> str:
    """The test file of the target's module when one exists (tests/test_<module>.py), else that name."""
    sym = loc.find(target)
    stem = (sym.path if sym else target.replace(".", "/")).rsplit("/", 1)[-1].removesuffix(".py")
    wanted = f"test_{stem}.py"
    existing = [t for t in loc.test_files if t.rsplit("/", 1)[-1] == wanted]
    return existing[0] if existing else f"tests/{wanted}"


def to_operation(data: Mapping[str, Any], loc: Localised) -> Operation:
    """One validated draft operation as a spec operation."""
    kind, target = str(data["op"]), str(data.get("target", ""))
    if kind.startswith("rename_"):
        return RenameSymbol(op="rename_symbol", target=target, new_name=data["new_name"])
    if kind == "add_parameter":
        return AddParameter(
            op="add_parameter",
            target=target,
            name=data["name"],
            default=data["default"],
            annotation=data.get("annotation") or None,
        )
    if kind == "remove_parameter":
        return RemoveParameter(op="remove_parameter", target=target, name=data["name"])
    if kind == "move_symbol":
        return MoveSymbol(op="move_symbol", target=target, to_module=data["to_module"])
    if kind == "edit_function":
        return EditFunction(op="edit_function", target=target, instruction=data["instruction"])
    if kind == "add_test":
        return AddTest(op="add_test", target=target, path=test_path(loc, target), instruction=data["instruction"])
    return AddFunction(op="add_function", target=f"{data['module']}.{data['name']}", instruction=data["instruction"])


def to_operations(draft: _DraftBase, loc: Localised) -> list[Operation]:
    """Every draft operation as a spec operation; one that the spec contract rejects is a SpecError."""
    ops: list[Operation] = []
    for index, item in enumerate(draft.operations):
        data: dict[str, Any] = item.model_dump() if isinstance(item, BaseModel) else dict(item)
        try:
            ops.append(to_operation(data, loc))
        except (ValidationError, KeyError) as exc:
            raise SpecError(
                f"draft operation {index} ({data.get('op')}) is not a valid operation: {exc}",
                hint="try again, or write the spec as YAML (docs/SPEC.md)",
            ) from None
    return ops
