"""The web pages: HTML, ES modules and CSS from ``web/``, with a strict Content-Security-Policy.

URLs are pretty: ``/visitor/book`` serves ``web/visitor/book.html``, ``/visitor/`` serves
``web/visitor/index.html``. Only files inside the web folder with a known type are served; the
page shell is cached by the service worker, never anything under ``/api``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from aiohttp import web

logger = logging.getLogger(__name__)

CONTENT_TYPES: dict[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
}

# No inline script or style anywhere: pages load modules and stylesheets from this origin only.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "media-src 'self' blob:",
        # 'self' covers this origin's ws:/wss: sockets (CSP Level 3).
        "connect-src 'self'",
        "worker-src 'self'",
        "manifest-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
# Cameras and microphones for this origin only; nothing else a page could ask for.
PERMISSIONS_POLICY = "camera=(self), microphone=(self), geolocation=(), payment=(), usb=()"
MAX_PATH_CHARS = 1024  # e-mailed join links carry a ~280-character token
# Pages whose URL carries a value in its path: e-mailed join links are ``/join/<token>``, the
# visitor's call page without signing in (the token authenticates the socket).
PAGES_WITH_PATH_VALUES: dict[str, str] = {"/join/": "visitor/call.html"}


class WebFolder:
    """Resolves request paths to files inside one folder, refusing anything outside it."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def resolve(self, url_path: str) -> Path | None:
        if len(url_path) > MAX_PATH_CHARS or "\x00" in url_path or "\\" in url_path:
            return None
        for prefix, page in PAGES_WITH_PATH_VALUES.items():
            if url_path.startswith(prefix) and "/" not in url_path[len(prefix) :]:
                url_path = "/" + page
        relative = url_path.strip("/")
        parts = [part for part in relative.split("/") if part]
        if any(part.startswith(".") for part in parts):
            return None
        base = self.root.joinpath(*parts) if parts else self.root
        candidates = (
            [base / "index.html"]
            if url_path.endswith("/") or not parts
            else [base, base.with_name(base.name + ".html"), base / "index.html"]
        )
        for candidate in candidates:
            resolved = candidate.resolve()
            if not resolved.is_relative_to(self.root) or not resolved.is_file():
                continue
            if resolved.suffix in CONTENT_TYPES:
                return resolved
        return None


def install_web(app: web.Application, web_dir: Path) -> None:
    """Serve the pages under every path that is not ``/api``, ``/ws``, ``/healthz`` or
    ``/metrics``."""
    if not web_dir.is_dir():
        logger.warning("web folder %s is missing: no pages are served", web_dir)
        return
    folder = WebFolder(web_dir)

    async def page(request: web.Request) -> web.StreamResponse:
        path = folder.resolve(request.path)
        if path is None:
            raise web.HTTPNotFound(
                text='{"error": {"code": "not_found", "message": "no such page"}}',
                content_type="application/json",
            )
        response = web.FileResponse(path, chunk_size=64 * 1024)
        response.content_type = CONTENT_TYPES[path.suffix].split(";")[0]
        if path.suffix in (".html", ".js", ".css"):
            response.charset = "utf-8"
        # Pages and scripts revalidate every load (ETag/Last-Modified make that cheap).
        response.headers["Cache-Control"] = "no-cache"
        # Every file gets the pages' policy: a service worker runs under its script's own CSP.
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        if path.suffix == ".html":
            response.headers["Permissions-Policy"] = PERMISSIONS_POLICY
        if path.name == "sw.js":
            response.headers["Service-Worker-Allowed"] = "/"
        return response

    app.router.add_get("/", page, name="web_root")
    app.router.add_get(r"/{path:(?!api/|api$|ws/|healthz$|metrics$).+}", page, name="web_page")
