"""GitHub double, contract side: match requests to GitHub's OpenAPI operations, check both ways."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

# A copy of GitHub's description cut to the bot's paths: tests/data/github/README.md says where it comes from.
SPEC_PATH = Path(__file__).resolve().parents[1] / "data/github/openapi/api.github.com.bot-subset.json"
_URN = "urn:github-openapi"
_METHODS = ("get", "post", "patch", "put", "delete")
# Parameters that may span several path segments (a file path, a git ref like heads/main).
_GREEDY = {"path", "ref"}


@dataclass(frozen=True)
class Operation:
    """One OpenAPI operation with its compiled path pattern."""

    method: str
    template: str
    operation_id: str
    pattern: re.Pattern[str]
    literal_chars: int

    @property
    def pointer(self) -> str:
        """JSON pointer of the operation inside the document."""
        escaped = self.template.replace("~", "~0").replace("/", "~1")
        return f"/paths/{escaped}/{self.method.lower()}"


def _compile(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    regex = ""
    for i, part in enumerate(parts):
        if part.startswith("{"):
            name = part[1:-1]
            last = i == len(parts) - 1 or parts[i + 1] == ""
            body = ".+" if name in _GREEDY and last else "[^/]+"
            regex += f"(?P<{name.replace('-', '_')}>{body})"
        else:
            regex += re.escape(part)
    return re.compile(f"^{regex}$")


class OpenApiContract:
    """The bot-subset of GitHub's description, ready to check requests and responses."""

    def __init__(self, path: Path = SPEC_PATH) -> None:
        self.doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        resource: Resource[Any] = Resource.from_contents(self.doc, default_specification=DRAFT4)
        self._registry: Registry[Any] = Registry[Any]().with_resource(_URN, resource)
        self._validators: dict[str, Any] = {}
        ops: list[Operation] = []
        for template, item in self.doc["paths"].items():
            for method in _METHODS:
                if method in item:
                    literal = len(re.sub(r"\{[^}]+\}", "", template))
                    ops.append(
                        Operation(method.upper(), template, item[method]["operationId"], _compile(template), literal)
                    )
        # Most literal first: /issues/comments must win over /issues/{issue_number}.
        self.operations = sorted(ops, key=lambda o: -o.literal_chars)

    def match(self, method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
        """The operation serving `method path`, with its path parameters."""
        for op in self.operations:
            if op.method != method:
                continue
            found = op.pattern.match(path)
            if found:
                return op, found.groupdict()
        return None

    def _resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            pointer = node["$ref"].removeprefix("#/").split("/")
            target: Any = self.doc
            for key in pointer:
                target = target[key.replace("~1", "/").replace("~0", "~")]
            node = target
        return node

    def _validator(self, pointer: str) -> Any:
        if pointer not in self._validators:
            self._validators[pointer] = OAS30Validator(
                {"$ref": f"{_URN}#{pointer}"}, registry=self._registry, format_checker=oas30_format_checker
            )
        return self._validators[pointer]

    def errors(self, pointer: str, instance: Any) -> list[str]:
        """Validation errors of `instance` against the schema at `pointer`, readable."""
        found: list[ValidationError] = list(self._validator(pointer).iter_errors(instance))
        return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message[:300]}" for e in found]

    def check_request(self, op: Operation, params: dict[str, str], query: dict[str, str], body: bytes) -> list[str]:
        """Problems with a request: unknown or ill-typed parameters, a body off the schema."""
        problems: list[str] = []
        item = self.doc["paths"][op.template]
        declared = [self._resolve(p) for p in item[op.method.lower()].get("parameters", [])]
        by_place = {(p["in"], p["name"]): p for p in declared}
        for name in query:
            spec = by_place.get(("query", name))
            if spec is None:
                problems.append(f"query parameter {name!r} is not in the description")
            else:
                problems += _check_scalar(name, query[name], spec.get("schema", {}))
        for key, value in params.items():
            spec = by_place.get(("path", key))
            if spec is not None:
                problems += _check_scalar(key, value, spec.get("schema", {}))
        problems += self._check_body(op, body)
        return problems

    def _check_body(self, op: Operation, body: bytes) -> list[str]:
        spec = self.doc["paths"][op.template][op.method.lower()].get("requestBody")
        if spec is None:
            return [] if not body.strip() else ["a body was sent where none is described"]
        item_body = self._resolve(spec)
        if not body.strip():
            return ["the request body is required"] if item_body.get("required") else []
        try:
            data = json.loads(body)
        except ValueError:
            return ["the request body is not JSON"]
        pointer = f"{op.pointer}/requestBody/content/application~1json/schema"
        if "$ref" in spec:
            ref = spec["$ref"].removeprefix("#")
            pointer = f"{ref}/content/application~1json/schema"
        return [f"request body {e}" for e in self.errors(pointer, data)]

    def check_response(self, op: Operation, status: int, body: Any) -> list[str]:
        """Problems with a response: an undocumented status or a body off the schema."""
        responses = self.doc["paths"][op.template][op.method.lower()]["responses"]
        key = str(status) if str(status) in responses else "default"
        if key not in responses:
            return [f"status {status} is not documented for {op.operation_id}"]
        response = responses[key]
        base = f"{op.pointer}/responses/{key}"
        if "$ref" in response:
            base = response["$ref"].removeprefix("#")
            response = self._resolve(response)
        content = response.get("content", {}).get("application/json")
        if content is None or "schema" not in content:
            return [] if body is None else [f"{status} has no body in the description"]
        return [f"response {e}" for e in self.errors(f"{base}/content/application~1json/schema", body)]


def _check_scalar(name: str, raw: str, schema: dict[str, Any]) -> list[str]:
    kind = schema.get("type")
    if kind == "integer" and not re.fullmatch(r"-?\d+", raw):
        return [f"parameter {name}={raw!r} is not an integer"]
    if kind == "boolean" and raw not in ("true", "false"):
        return [f"parameter {name}={raw!r} is not a boolean"]
    if "enum" in schema and raw not in schema["enum"]:
        return [f"parameter {name}={raw!r} is not one of {schema['enum']}"]
    return []
