"""``/api/docs``: the API reference as one HTML page, rendered here from the OpenAPI document.

FastAPI's own docs pages load scripts and styles from a CDN, which the pages'
CSP and a closed network both forbid; this page needs nothing but the
site's stylesheet. The document itself is served at ``/api/openapi.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

METHODS = ("get", "post", "put", "patch", "delete")


@dataclass
class Parameter:
    name: str
    where: str
    required: bool
    kind: str
    description: str


@dataclass
class Operation:
    method: str
    path: str
    anchor: str
    summary: str
    description: str
    parameters: list[Parameter] = field(default_factory=list)
    body: str = ""
    responses: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class SchemaDoc:
    name: str
    description: str
    fields: list[Parameter]


def type_name(schema: dict[str, Any]) -> str:
    """A schema as a short type: ``string``, ``list of StoryIn``, ``integer or null``."""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    for combined in ("anyOf", "oneOf"):
        if combined in schema:
            return " or ".join(type_name(s) for s in schema[combined])
    kind = str(schema.get("type", "any"))
    if kind == "array":
        return f"list of {type_name(schema.get('items', {}))}"
    if "enum" in schema:
        return " | ".join(str(v) for v in schema["enum"])
    return kind


def _body(op: dict[str, Any]) -> str:
    content = op.get("requestBody", {}).get("content", {})
    return "; ".join(f"{ctype}: {type_name(c.get('schema', {}))}" for ctype, c in content.items())


def operations(doc: dict[str, Any]) -> list[Operation]:
    """Every operation of the document, in path order."""
    found = []
    for path, item in sorted(doc.get("paths", {}).items()):
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            params = [
                Parameter(
                    p["name"],
                    p.get("in", ""),
                    bool(p.get("required")),
                    type_name(p.get("schema", {})),
                    p.get("description", p.get("schema", {}).get("description", "")),
                )
                for p in op.get("parameters", [])
            ]
            found.append(
                Operation(
                    method.upper(),
                    path,
                    op.get("operationId", f"{method}{path}"),
                    op.get("summary", ""),
                    op.get("description", ""),
                    params,
                    _body(op),
                    [(code, r.get("description", "")) for code, r in op["responses"].items()],
                )
            )
    return found


def schemas(doc: dict[str, Any]) -> list[SchemaDoc]:
    """The document's schemas (request and response bodies), by name."""
    found = []
    for name, schema in sorted(doc.get("components", {}).get("schemas", {}).items()):
        required = set(schema.get("required", []))
        fields = [
            Parameter(key, "", key in required, type_name(prop), prop.get("description", ""))
            for key, prop in schema.get("properties", {}).items()
        ]
        found.append(SchemaDoc(name, schema.get("description", ""), fields))
    return found
