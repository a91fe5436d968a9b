"""Request id and domain-error translation, in one place (security headers: ``serving``)."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from vvserver.app_keys import REQUEST_ID
from vvserver.domain.errors import DomainError

logger = logging.getLogger(__name__)

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(
    status: int, code: str, message: str, details: Any = None, request_id: str | None = None
) -> web.Response:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if details is not None:
        body["error"]["details"] = details
    if request_id:
        body["error"]["request_id"] = request_id
    return web.json_response(body, status=status)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
}


@web.middleware
async def request_id_middleware(request: web.Request, handler: _Handler) -> web.StreamResponse:
    given = request.headers.get("X-Request-ID", "")
    request[REQUEST_ID] = given if _REQUEST_ID_RE.match(given) else uuid.uuid4().hex
    response = await handler(request)
    response.headers["X-Request-ID"] = request[REQUEST_ID]
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: _Handler) -> web.StreamResponse:
    rid: str | None = request.get(REQUEST_ID)
    try:
        return await handler(request)
    except DomainError as exc:
        resp = error_response(exc.status, exc.code, exc.message, exc.details, rid)
        if exc.status == 429 and isinstance(exc.details, dict) and "retry_after" in exc.details:
            resp.headers["Retry-After"] = str(exc.details["retry_after"])
        return resp
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        resp = error_response(exc.status, code, exc.reason, None, rid)
        if exc.status == 405 and "Allow" in exc.headers:
            resp.headers["Allow"] = exc.headers["Allow"]
        return resp
    except Exception:
        logger.exception("unhandled error request_id=%s %s %s", rid, request.method, request.path)
        return error_response(500, "internal", "internal server error", None, rid)
