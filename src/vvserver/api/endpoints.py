"""Typed JSON routes: one decorator declares method, path, roles, body and response models.

The registry is the single source for the aiohttp router, the OpenAPI 3.1 document and the
authorization-matrix test (every route declares which roles may call it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from vvserver.api.context import RequestContext, resolve_context
from vvserver.app_keys import REQUEST_ID, SERVICES
from vvserver.domain.errors import DomainError, InvalidInput, PayloadTooLarge

PUBLIC = "public"
ALL_ROLES = frozenset({"visitor", "officer", "facility_admin", "agency_admin", "kiosk"})
STAFF = frozenset({"officer", "facility_admin", "agency_admin"})
ADMINS = frozenset({"facility_admin", "agency_admin"})
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Request bodies nest a few levels (rules -> hours -> windows); deeper ones are refused.
MAX_JSON_DEPTH = 32


class ApiModel(BaseModel):
    """Base for request bodies: unknown fields are an error, strings are trimmed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class BadJson(DomainError):
    status = 400
    code = "malformed_json"


class JsonTooDeep(DomainError):
    status = 400
    code = "json_too_deep"


class UnsupportedMediaType(DomainError):
    status = 415
    code = "unsupported_media_type"


Handler = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    roles: frozenset[str]
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: Any
    status: int
    summary: str
    tag: str
    # Raw request bodies (e.g. image uploads): content types accepted, handler reads the body.
    raw_body_types: tuple[str, ...] = ()
    # Non-JSON responses (e.g. text/calendar): content type for the OpenAPI document.
    raw_response_type: str | None = None
    extra_statuses: tuple[int, ...] = field(default=())
    # Other success answers the handler may give: (status, response model) for the OpenAPI.
    extra_responses: tuple[tuple[int, Any], ...] = ()
    # The handler checks the request's credentials itself (``/metrics``: its bearer token);
    # no session or device token is resolved for it. Public routes only.
    own_credentials: bool = False

    @property
    def public(self) -> bool:
        return PUBLIC in self.roles


_PATH_PARAM = re.compile(r"{(\w+)}")


class ApiRouter:
    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.endpoints: list[Endpoint] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        roles: frozenset[str] | set[str] | str,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: Any = None,
        status: int = 200,
        summary: str = "",
        raw_body_types: tuple[str, ...] = (),
        raw_response_type: str | None = None,
        extra_responses: tuple[tuple[int, Any], ...] = (),
        own_credentials: bool = False,
    ) -> Callable[[Handler], Handler]:
        role_set = frozenset({roles}) if isinstance(roles, str) else frozenset(roles)
        if own_credentials and PUBLIC not in role_set:
            raise ValueError("only a public route checks its own credentials")

        def decorate(handler: Handler) -> Handler:
            self.endpoints.append(
                Endpoint(
                    method=method.upper(),
                    path=path,
                    handler=handler,
                    roles=role_set,
                    body=body,
                    query=query,
                    response=response,
                    status=status,
                    summary=summary or (handler.__doc__ or "").strip().split("\n")[0],
                    own_credentials=own_credentials,
                    tag=self.tag,
                    raw_body_types=raw_body_types,
                    raw_response_type=raw_response_type,
                    extra_responses=extra_responses,
                )
            )
            return handler

        return decorate


def _validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": list(err["loc"]), "msg": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


async def _parse_body(request: web.Request, model: type[BaseModel]) -> BaseModel:
    ctype = request.content_type
    if ctype != "application/json":
        raise UnsupportedMediaType("send the body as application/json")
    limit = request.app[SERVICES].settings.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"request body over {limit} bytes")
    raw = await request.read()
    if len(raw) > limit:
        raise PayloadTooLarge(f"request body over {limit} bytes")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadJson(f"malformed JSON: {exc}") from exc
    except RecursionError:
        # The decoder gives up near the interpreter's recursion limit (about 1000 levels).
        raise JsonTooDeep(f"JSON nested more than {MAX_JSON_DEPTH} levels deep") from None
    if _nesting_over(data, MAX_JSON_DEPTH):
        raise JsonTooDeep(f"JSON nested more than {MAX_JSON_DEPTH} levels deep")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput("invalid request body", details=_validation_details(exc)) from exc


def _nesting_over(value: Any, limit: int) -> bool:
    """True when arrays/objects nest deeper than ``limit`` (checked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _parse_query(request: web.Request, model: type[BaseModel]) -> BaseModel:
    data: dict[str, Any] = {}
    for key in request.query:
        values = request.query.getall(key)
        data[key] = values if len(values) > 1 else values[0]
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput("invalid query parameters", details=_validation_details(exc)) from exc


def _make_view(endpoint: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    adapter = TypeAdapter(endpoint.response) if endpoint.response is not None else None

    async def view(request: web.Request) -> web.StreamResponse:
        if endpoint.own_credentials:
            services = request.app[SERVICES]
            ctx = RequestContext(request, services, None, request[REQUEST_ID])
        else:
            ctx = await resolve_context(request, endpoint.roles, endpoint.method in UNSAFE_METHODS)
        kwargs: dict[str, Any] = {}
        if endpoint.body is not None:
            kwargs["body"] = await _parse_body(request, endpoint.body)
        elif endpoint.raw_body_types and request.content_type not in endpoint.raw_body_types:
            raise UnsupportedMediaType(f"send one of: {', '.join(endpoint.raw_body_types)}")
        if endpoint.query is not None:
            kwargs["query"] = _parse_query(request, endpoint.query)
        result = await endpoint.handler(ctx, **kwargs)
        if isinstance(result, web.StreamResponse):
            return result
        if adapter is None:
            return web.Response(status=endpoint.status if endpoint.status != 200 else 204)
        payload = adapter.dump_python(result, mode="json")
        return web.json_response(payload, status=endpoint.status)

    view.__name__ = endpoint.handler.__name__
    return view


def install(app: web.Application, routers: list[ApiRouter]) -> list[Endpoint]:
    endpoints: list[Endpoint] = []
    for router in routers:
        for endpoint in router.endpoints:
            app.router.add_route(endpoint.method, endpoint.path, _make_view(endpoint))
            endpoints.append(endpoint)
    return endpoints


def path_params(path: str) -> list[str]:
    return _PATH_PARAM.findall(path)


__all__ = [
    "ADMINS",
    "ALL_ROLES",
    "PUBLIC",
    "STAFF",
    "ApiModel",
    "ApiRouter",
    "Endpoint",
    "RequestContext",
    "install",
]
