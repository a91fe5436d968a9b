"""Minimal valid JSON values from a JSON schema, for tests that need to get past validation."""

from __future__ import annotations

from typing import Any

_FORMATS = {
    "date": "2031-01-06",
    "date-time": "2031-01-06T15:00:00+00:00",
    "email": "someone@example.org",
    "time": "09:00:00",
}


def example(schema: dict[str, Any], components: dict[str, Any]) -> Any:
    if "$ref" in schema:
        return example(components[schema["$ref"].rsplit("/", 1)[1]], components)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return example(options[0], components)
    kind = schema.get("type", "object")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: example(props[name], components) for name in schema.get("required", [])}
    if kind == "array":
        return [example(schema.get("items", {}), components)] * schema.get("minItems", 0)
    if kind == "string":
        if schema.get("format") in _FORMATS:
            return _FORMATS[schema["format"]]
        return "x" * max(schema.get("minLength", 1), 1)
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1)
        return low
    if kind == "boolean":
        return False
    return None
