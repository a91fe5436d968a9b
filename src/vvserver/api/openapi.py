"""OpenAPI 3.1 document generated from the route registry's pydantic models."""

from __future__ import annotations

import inspect
from typing import Any

from pydantic import TypeAdapter

from vvserver import __version__
from vvserver.api.endpoints import Endpoint, path_params
from vvserver.domain.accounts.credentials import SESSION_COOKIE

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


_DESCRIPTION = """\
The JSON API of vvserver. How to write a client is in docs/api.md (errors, ids, time stamps, rate
limits); the WebSocket signaling protocol is in docs/protocol.md.

Authentication: staff and visitors sign in with `POST /api/auth/login`, which sets the session
cookie (`session` scheme) and answers a `csrf_token`. Every state-changing request made with the
cookie (POST, PUT, PATCH, DELETE) must send that token in the `X-CSRF-Token` header, or it is
refused with 403 `csrf_failed`. Kiosks send their device token as `Authorization: Bearer <token>`
(`device` scheme; no CSRF header). `x-roles` on each operation lists the roles that may call it.
"""

# Path parameters named like this are database ids: ASCII digits (other scripts' digits are not
# ids: 404), 32-bit.
_ID_SCHEMA: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}


def security_for(roles: frozenset[str]) -> list[dict[str, list[str]]]:
    """The schemes an operation accepts: the device token for kiosks, the cookie for accounts,
    the pending sign-in cookie for the second step of a staff sign-in."""
    if roles == {"mfa_pending"}:
        return [{"mfa_pending": []}]
    schemes: list[dict[str, list[str]]] = []
    if roles - {"kiosk"}:
        schemes.append({"session": []})
    if "kiosk" in roles:
        schemes.append({"device": []})
    return schemes


def _path_param(name: str) -> dict[str, Any]:
    schema = dict(_ID_SCHEMA) if name.endswith("_id") else {"type": "string"}
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _description(ep: Endpoint) -> str:
    """The handler's docstring after its first paragraph (the summary)."""
    paragraphs = inspect.cleandoc(ep.handler.__doc__ or "").split("\n\n", 1)
    return " ".join(paragraphs[1].split()) if len(paragraphs) > 1 else ""


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
        if description := _description(ep):
            op["description"] = description
        params: list[dict[str, Any]] = [_path_param(name) for name in path_params(ep.path)]
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
        for status, model in ep.extra_responses:
            op["responses"][str(status)] = {
                "description": (getattr(model, "__doc__", "") or "OK").strip().split("\n")[0],
                "content": {
                    "application/json": {"schema": _schema(model, components, "serialization")}
                },
            }
        op["responses"]["400"] = _error(
            "Malformed request (malformed_json; json_too_deep: arrays/objects nested over 32 deep)"
        )
        op["responses"]["422"] = _error(
            "Invalid input (names refuse control, bidi, zero-width and non-characters)"
        )
        if not ep.public:
            op["responses"]["401"] = _error("Not signed in")
            op["responses"]["403"] = _error("Not allowed")
            op["security"] = security_for(ep.roles)
        op["responses"]["404"] = _error("Not found or not in scope")
        op["responses"]["409"] = _error("Conflict with the current state")
        op["responses"]["413"] = _error("Body too large")
        op["responses"]["415"] = _error("Wrong content type")
        op["responses"]["423"] = _error("Account locked")
        op["responses"]["429"] = _error("Rate limited")
        paths.setdefault(ep.path, {})[ep.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "vvserver API", "version": __version__, "description": _DESCRIPTION},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": SESSION_COOKIE,
                    "description": "Set by POST /api/auth/login (staff: after POST /api/auth/mfa): "
                    "`vv_session`, or `__Host-vv_session` when the server runs behind TLS "
                    "(VV_BEHIND_TLS). Unsafe methods also need the X-CSRF-Token header with the "
                    "csrf_token of the login answer.",
                },
                "device": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A kiosk's device token (k<id>.<secret>), shown once when the "
                    "kiosk is created or its credential rotated.",
                },
                "mfa_pending": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "vv_mfa",
                    "description": "A staff sign-in waiting for its second step (10 minutes, "
                    "single use): only the /api/auth/mfa operations accept it.",
                },
            },
        },
    }
