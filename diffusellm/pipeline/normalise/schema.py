"""Structured output: finite JSON schemas from pydantic models, narrowed to a repository's names.

A small model left free inside an unbounded string or list repeats itself until the token budget
runs out, so every schema made here bounds every string (`maxLength`, or a pattern with bounded
repeats) and every list (`maxItems`). Pure functions: schemas in, schemas out.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, cast

from pydantic import BaseModel

from diffusellm.errors import InputError
from diffusellm.pipeline.normalise.names import naming_pattern
from diffusellm.pipeline.understand.style.profile import NamingConvention

__all__ = ["bound_pattern", "constrain_schema", "name_pattern", "schema_for"]

Schema = dict[str, Any]


def schema_for(model_cls: type[BaseModel], *, max_string: int = 200, max_items: int = 16) -> Schema:
    """The JSON schema of `model_cls`, made finite for grammar-constrained decoding.

    Strings without `maxLength` get `max_string`, lists without `maxItems` get `max_items`,
    patterns get bounded repeats, `oneOf` becomes `anyOf` (pydantic's tagged unions are disjoint
    by their `const` tag anyway) and each object lists its `const` tag first, so the model
    commits to a variant before writing its fields.
    """
    schema = model_cls.model_json_schema()
    for node in list(_nodes(schema)):
        _finish_node(node, max_string, max_items)
    return schema


def _finish_node(node: Schema, max_string: int, max_items: int) -> None:
    if "oneOf" in node:
        node["anyOf"] = node.pop("oneOf")
    node.pop("discriminator", None)
    kind = node.get("type")
    if kind == "string" and "enum" not in node and "const" not in node:
        if "pattern" in node:
            limit = int(node.pop("maxLength", max_string))
            node["pattern"] = bound_pattern(str(node["pattern"]), limit)
        else:
            node["maxLength"] = min(int(node.get("maxLength", max_string)), 1_000_000)
    elif kind == "array" and "maxItems" not in node:
        node["maxItems"] = max_items
    props = node.get("properties")
    if isinstance(props, dict):
        node["properties"] = _tags_first(cast(dict[str, Any], props))


def _tags_first(props: dict[str, Any]) -> dict[str, Any]:
    def is_tag(item: tuple[str, Any]) -> bool:
        return isinstance(item[1], dict) and "const" in item[1]

    items = list(props.items())
    return dict([i for i in items if is_tag(i)] + [i for i in items if not is_tag(i)])


def _nodes(node: Any) -> Iterator[Schema]:
    """Every schema object inside `node` (depth first, the node itself included)."""
    if isinstance(node, dict):
        mapping = cast(Schema, node)
        yield mapping
        for key, value in mapping.items():
            if key in ("properties", "$defs", "definitions", "patternProperties"):
                for child in cast(Mapping[str, Any], value).values():
                    yield from _nodes(child)
            elif key not in ("enum", "const", "default", "examples", "required"):
                yield from _nodes(value)
    elif isinstance(node, list):
        for item in cast(list[Any], node):
            yield from _nodes(item)


def bound_pattern(pattern: str, limit: int) -> str:
    """`pattern` with each unbounded repeat (`*`, `+`, `{m,}`) capped at `limit` repetitions.

    The grammar then admits only finitely many strings. With several repeats a match can still
    exceed `limit` characters; give such fields their own exact pattern (`constrain_schema`).
    """
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            out.append(pattern[i : i + 2])
            i += 2
        elif char == "[":
            end = _class_end(pattern, i)
            out.append(pattern[i:end])
            i = end
        elif char in "*+":
            out.append(f"{{{0 if char == '*' else 1},{limit}}}")
            i += 1
        elif char == "{" and (close := pattern.find("}", i)) > 0:
            out.append(_bounded_braces(pattern[i : close + 1], limit))
            i = close + 1
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _class_end(pattern: str, start: int) -> int:
    """Index just past the `]` closing the character class opened at `start`."""
    i = start + 1
    if i < len(pattern) and pattern[i] == "^":
        i += 1
    if i < len(pattern) and pattern[i] == "]":
        i += 1  # a `]` first in a class is a literal
    while i < len(pattern) and pattern[i] != "]":
        i += 2 if pattern[i] == "\\" else 1
    return min(i + 1, len(pattern))


def _bounded_braces(braces: str, limit: int) -> str:
    low, sep, high = braces[1:-1].partition(",")
    if sep and not high.strip() and low.strip().isdigit():
        return f"{{{low.strip()},{max(int(low), limit)}}}"
    return braces


def name_pattern(convention: NamingConvention, max_length: int = 64) -> str:
    """An anchored regex admitting only new names that follow `convention` (structured_names)."""
    return naming_pattern(convention, max_length)


def constrain_schema(
    schema: Mapping[str, Any],
    *,
    enums: Mapping[str, Sequence[str]] | None = None,
    patterns: Mapping[str, str] | None = None,
) -> Schema:
    """A copy of `schema` with fields narrowed to real values (`enums`) or a regex (`patterns`).

    Keys are JSON pointers (`/properties/target`, `/$defs/Rename/properties/target`) or plain field
    names, which narrow that property in every object of the schema. An enum could be the
    repository's qualified names; a pattern could come from `name_pattern(convention)`.
    """
    result = copy.deepcopy(dict(schema))
    for key, values in (enums or {}).items():
        if not values:
            raise InputError(
                f"the enum for {key!r} is empty: no value could ever be generated",
                hint="pass at least one allowed value",
            )
        _narrow(result, key, {"type": "string", "enum": list(dict.fromkeys(values))})
    for key, regex in (patterns or {}).items():
        _narrow(result, key, {"type": "string", "pattern": regex})
    return result


def _narrow(schema: Schema, key: str, replacement: Schema) -> None:
    targets = _by_pointer(schema, key) if key.startswith("/") else _by_field(schema, key)
    if not targets:
        raise InputError(
            f"no field {key!r} in the schema {schema.get('title', '')!r}",
            hint="name a property of the model, or give a JSON pointer like /properties/target",
        )
    for parent, name in targets:
        old: Any = parent[name]
        described = cast(Schema, old) if isinstance(old, dict) else {}
        keep = {k: v for k, v in described.items() if k in ("title", "description")}
        parent[name] = {**keep, **replacement}


def _by_field(schema: Schema, field: str) -> list[tuple[Schema, str]]:
    found: list[tuple[Schema, str]] = []
    for node in _nodes(schema):
        props = node.get("properties")
        if isinstance(props, dict) and field in props:
            found.append((cast(Schema, props), field))
    return found


def _by_pointer(schema: Schema, pointer: str) -> list[tuple[Schema, str]]:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    node: Any = schema
    for part in parts[:-1]:
        if not isinstance(node, dict) or part not in node:
            return []
        node = cast(Schema, node)[part]
    if not isinstance(node, dict) or not parts or parts[-1] not in node:
        return []
    return [(cast(Schema, node), parts[-1])]
