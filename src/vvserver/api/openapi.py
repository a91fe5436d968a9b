"""OpenAPI 3.1 document generated from the route registry's pydantic models."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from vvserver import __version__
from vvserver.api.endpoints import Endpoint, path_params

_REF = "#/components/schemas/{model}"

_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {},
                "request_id": {"type": "string"},
            },
        }
    },
}


def _schema(tp: Any, components: dict[str, Any], mode: str) -> dict[str, Any]:
    schema = TypeAdapter(tp).json_schema(ref_template=_REF, mode=mode)  # type: ignore[arg-type]
    for name, sub in schema.pop("$defs", {}).items():
        components.setdefault(name, sub)
    return schema


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def build_openapi(endpoints: list[Endpoint]) -> dict[str, Any]:
    components: dict[str, Any] = {"Error": _ERROR_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    for ep in endpoints:
        op: dict[str, Any] = {
            "operationId": f"{ep.tag}_{ep.handler.__name__}",
            "summary": ep.summary,
            "tags": [ep.tag],
            "x-roles": sorted(ep.roles),
            "responses": {},
        }
        params: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in path_params(ep.path)
        ]
        if ep.query is not None:
            qschema = _schema(ep.query, components, "validation")
            if "$ref" in qschema:
                qschema = components[qschema["$ref"].rsplit("/", 1)[1]]
            required = set(qschema.get("required", []))
            for name, prop in qschema.get("properties", {}).items():
                params.append(
                    {"name": name, "in": "query", "required": name in required, "schema": prop}
                )
        if params:
            op["parameters"] = params
        if ep.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": _schema(ep.body, components, "validation")}
                },
            }
        elif ep.raw_body_types:
            op["requestBody"] = {
                "required": True,
                "content": {
                    t: {"schema": {"type": "string", "format": "binary"}} for t in ep.raw_body_types
                },
            }
        if ep.raw_response_type is not None:
            op["responses"][str(ep.status)] = {
                "description": "OK",
                "content": {ep.raw_response_type: {"schema": {"type": "string"}}},
            }
        elif ep.response is not None:
            op["responses"][str(ep.status)] = {
                "description": "OK",
                "content": {
                    "application/json": {
                        "schema": _schema(ep.response, components, "serialization")
                    }
                },
            }
        else:
            op["responses"]["204"] = {"description": "No content"}
        op["responses"]["400"] = _error("Malformed request")
        op["responses"]["422"] = _error("Invalid input")
        if not ep.public:
            op["responses"]["401"] = _error("Not signed in")
            op["responses"]["403"] = _error("Not allowed")
            op["security"] = [{"session": []}, {"device": []}]
        op["responses"]["404"] = _error("Not found or not in scope")
        op["responses"]["409"] = _error("Conflict with the current state")
        op["responses"]["413"] = _error("Body too large")
        op["responses"]["415"] = _error("Wrong content type")
        op["responses"]["423"] = _error("Account locked")
        op["responses"]["429"] = _error("Rate limited")
        paths.setdefault(ep.path, {})[ep.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "vvserver API", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "vv_session",
                    "description": "The session cookie set by POST /api/auth/login: "
                    "`vv_session`, or `__Host-vv_session` when the server runs behind TLS "
                    "(VV_BEHIND_TLS). State changes also need the X-CSRF-Token header.",
                },
                "device": {"type": "http", "scheme": "bearer"},
            },
        },
    }
