"""The security headers of every HTTP answer, and the runner that serves the app with them.

Every response carries them: the routed ones (JSON, pages, files, errors, the WebSocket upgrade)
through the app's ``on_response_prepare`` signal, and the ones aiohttp writes by itself for a
request it cannot parse (a 400 for an over-long header line) through the runner's request
handler, which also logs such a request as one line instead of an ERROR with a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from vvserver.app_keys import SERVICES

logger = logging.getLogger(__name__)

# No version: the Server header names the software only.
SERVER_NAME = "vvserver"
# One year, subdomains included (ASVS 3.4.1); sent only when the server sits behind TLS.
HSTS = "max-age=31536000; includeSubDomains"
# For everything that is not a page (JSON, photos, recordings, errors): nothing may run, load or
# frame it. The pages and their scripts set their own policy (``web_pages``).
DEFAULT_CSP = "; ".join(
    (
        "default-src 'none'",
        "object-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "sandbox",
    )
)
_LOGGED_DETAIL_CHARS = 200


def security_headers(*, behind_tls: bool) -> dict[str, str]:
    """The headers every response gets (a response's own CSP or caching wins)."""
    headers = {
        "Server": SERVER_NAME,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Content-Security-Policy": DEFAULT_CSP,
    }
    if behind_tls:
        headers["Strict-Transport-Security"] = HSTS
    return headers


def apply_headers(target: MutableMapping[str, str], headers: Mapping[str, str]) -> None:
    for name, value in headers.items():
        if name == "Server":
            target[name] = value  # aiohttp has already put its own (with versions) there
        else:
            target.setdefault(name, value)


def install_security_headers(app: web.Application, *, behind_tls: bool) -> None:
    headers = security_headers(behind_tls=behind_tls)

    async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
        apply_headers(response.headers, headers)
        if request.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")

    app.on_response_prepare.append(add_headers)


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return repr(flat[:_LOGGED_DETAIL_CHARS])[1:-1]


class _RequestHandler(web.RequestHandler):
    """aiohttp's connection handler, with our headers on the answers it writes by itself."""

    security_headers: Mapping[str, str] = {}

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        response = super().handle_error(request, status, exc, message)
        apply_headers(response.headers, self.security_headers)
        return response

    def log_exception(self, *args: Any, **kw: Any) -> None:
        exc = kw.get("exc_info")
        if isinstance(exc, HttpProcessingError) and exc.code is not None and exc.code < 500:
            # A client's malformed request (bad or over-long header line): one line, no traceback.
            where = str(args[0]) % args[1:] if args else "malformed request"
            self.logger.warning("%s: answered %d: %s", where, exc.code, _one_line(exc.message))
            return
        super().log_exception(*args, **kw)


class _Server(web.Server):
    def __init__(self, *args: Any, security_headers: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.security_headers = security_headers

    def __call__(self) -> web.RequestHandler:
        handler = _RequestHandler(self, loop=self._loop, **self._kwargs)
        handler.security_headers = self.security_headers
        return handler


class AppRunner(web.AppRunner):
    """``web.AppRunner`` whose own error answers carry the security headers too."""

    async def _make_server(self) -> web.Server:
        # aiohttp has no public hook for the answers its connection handler writes itself: the
        # same server, with our handler class (``_kwargs`` are the handler's arguments). Pinned by
        # tests/security/test_headers.py and test_protocol_edges.py (a broken request).
        plain = await super()._make_server()
        behind_tls = self.app[SERVICES].settings.behind_tls
        return _Server(
            plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            security_headers=security_headers(behind_tls=behind_tls),
            **plain._kwargs,
        )
