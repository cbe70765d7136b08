"""Tests for structured output: finite schemas, narrowing, constrained JSON from SmolLM2."""

from __future__ import annotations

import itertools
import json
import keyword
import re
from typing import Annotated, Any, Literal, cast, get_args

import pytest
from pydantic import BaseModel, Field

from diffusellm.errors import InputError
from diffusellm.models.base import ChatMessage, ModelError
from diffusellm.models.hf.generator import HFTextGenerator
from diffusellm.pipeline.normalise.schema import bound_pattern, constrain_schema, name_pattern, schema_for
from diffusellm.pipeline.spec import Spec
from diffusellm.pipeline.understand.style.infer import conforms
from diffusellm.pipeline.understand.style.profile import NamingConvention

TARGETS = ["shop.cart.add_item", "shop.cart.Cart.total", "shop.util.slugify"]
ISSUE: list[ChatMessage] = [
    {"role": "system", "content": "You turn issue text into a JSON change request."},
    {"role": "user", "content": "Issue: please rename slugify in shop.util to make_slug."},
]


class Rename(BaseModel):
    op: Literal["rename_symbol"]
    target: Annotated[str, Field(max_length=300)]
    new_name: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=24)]


class SpecLike(BaseModel):
    title: Annotated[str, Field(min_length=1, max_length=30)]
    operations: Annotated[list[Rename], Field(min_length=1, max_length=1)]


def _unbounded(pattern: str) -> bool:
    """Whether a regex still has a `*`, `+` or `{m,}` outside classes and escapes."""
    plain = re.sub(r"\\.|\[(\\.|[^\]])*\]", "", pattern)
    return bool(re.search(r"[*+]|\{\d+,\}", plain))


def _walk(node: Any) -> list[dict[str, Any]]:
    """Every JSON object inside `node`, itself included."""
    if isinstance(node, dict):
        mapping = cast(dict[str, Any], node)
        return [mapping, *(n for v in mapping.values() for n in _walk(v))]
    if isinstance(node, list):
        return [n for v in cast(list[Any], node) for n in _walk(v)]
    return []


def test_schema_for_bounds_every_string_and_list_of_the_real_spec() -> None:
    nodes = _walk(schema_for(Spec))
    strings = [n for n in nodes if n.get("type") == "string"]
    assert strings and all("maxLength" in n or "enum" in n or "const" in n or "pattern" in n for n in strings)
    assert not [n["pattern"] for n in strings if "pattern" in n and _unbounded(n["pattern"])]
    assert all("maxItems" in n for n in nodes if n.get("type") == "array")
    assert not [n for n in nodes if "oneOf" in n or "discriminator" in n]
    variants = [n for n in nodes if "properties" in n and "op" in n["properties"]]
    assert variants and all(next(iter(v["properties"])) == "op" for v in variants)


def test_bound_pattern_caps_only_real_repeats() -> None:
    assert bound_pattern(r"^[A-Za-z_][A-Za-z0-9_]*$", 50) == r"^[A-Za-z_][A-Za-z0-9_]{0,50}$"
    assert bound_pattern(r"^a+(\.b)*$", 9) == r"^a{1,9}(\.b){0,9}$"
    assert bound_pattern(r"^[*+]\*x{2,}y{1,3}$", 8) == r"^[*+]\*x{2,8}y{1,3}$"
    assert bound_pattern(r"^[]*]z$", 5) == r"^[]*]z$"


@pytest.mark.parametrize("convention", get_args(NamingConvention))
def test_name_pattern_admits_only_conforming_non_keyword_names(convention: NamingConvention) -> None:
    regex = re.compile(name_pattern(convention, 12))
    candidates = {"".join(p) for n in range(1, 5) for p in itertools.product("aZb_1T", repeat=n)}
    candidates |= set(keyword.kwlist) | {"x" * 13, "make_thing", "MakeThing", "makeThing", "MAKE_IT"}
    admitted = [c for c in candidates if regex.fullmatch(c)]
    assert admitted
    for name in admitted:
        assert name.isidentifier() and not keyword.iskeyword(name) and len(name) <= 12
        assert conforms(name, convention), name
    examples = {"snake_case": "make_thing", "PascalCase": "MakeThing", "camelCase": "makeThing",
                "UPPER_CASE": "MAKE_IT", "lowercase": "thing", "mixed": "make_Thing"}
    assert regex.fullmatch(examples[convention]) and regex.fullmatch("_" + examples[convention])


def test_constrain_schema_narrows_by_field_name_and_by_pointer() -> None:
    base = schema_for(SpecLike)
    narrowed = constrain_schema(base, enums={"target": TARGETS}, patterns={"new_name": "^[a-z]{1,5}$"})
    props = narrowed["$defs"]["Rename"]["properties"]
    assert props["target"]["enum"] == TARGETS and props["new_name"]["pattern"] == "^[a-z]{1,5}$"
    assert "enum" not in base["$defs"]["Rename"]["properties"]["target"]  # the input is untouched
    by_pointer = constrain_schema(base, enums={"/$defs/Rename/properties/target": ["a.b"]})
    assert by_pointer["$defs"]["Rename"]["properties"]["target"]["enum"] == ["a.b"]
    with pytest.raises(InputError, match="no field 'nope'"):
        constrain_schema(base, enums={"nope": ["x"]})
    with pytest.raises(InputError, match="empty"):
        constrain_schema(base, enums={"target": []})


def _issue_schema() -> dict[str, Any]:
    return constrain_schema(schema_for(SpecLike), enums={"target": TARGETS},
                            patterns={"new_name": name_pattern("snake_case", 24)})


def test_ten_sampled_generations_all_parse_validate_and_use_real_targets(smollm: HFTextGenerator) -> None:
    replies = smollm.sample_json(ISSUE, _issue_schema(), n=10, max_new_tokens=120, temperature=0.9, seed=1)
    assert len(replies) == 10 and len(set(replies)) > 1
    for reply in replies:
        spec = SpecLike.model_validate_json(reply)
        (operation,) = spec.operations
        assert operation.target in TARGETS and conforms(operation.new_name, "snake_case")


def test_greedy_json_is_compact_and_valid(smollm: HFTextGenerator) -> None:
    reply = smollm.generate_json(ISSUE, _issue_schema(), max_new_tokens=120)
    assert reply == json.dumps(json.loads(reply))  # compact separators, nothing around it
    assert SpecLike.model_validate_json(reply).operations[0].target in TARGETS


def test_a_budget_too_small_for_the_json_is_an_error_not_broken_json(smollm: HFTextGenerator) -> None:
    with pytest.raises(ModelError, match="not finished within max_new_tokens=6"):
        smollm.generate_json(ISSUE, _issue_schema(), max_new_tokens=6)
