"""Every answer tells the browser how to treat it: no sniffing, no framing, no referrer, a
restrictive CSP, HSTS behind TLS, and a Server header without versions (ASVS 3.4, 13.4.6)."""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import ClientResponse
from multidict import CIMultiDict, CIMultiDictProxy

from tests.factories import ApiUser, World
from tests.security.conftest import Client, Served

ROOT = Path(__file__).resolve().parents[2]
HSTS = re.compile(r"max-age=(\d+); includeSubDomains")
ONE_YEAR_S = 365 * 24 * 3600

# One of each kind of answer: API JSON (ok, 401, 404, 405), a page, its scripts and styles,
# the service worker, a page that does not exist, the health check.
ANSWERS = [
    ("GET", "/api/openapi.json", 200),
    ("GET", "/api/me", 401),
    ("GET", "/api/no-such-thing", 404),
    ("DELETE", "/api/openapi.json", 405),
    ("TRACE", "/api/me", 405),
    ("GET", "/signin", 200),
    ("GET", "/assets/core.js", 200),
    ("GET", "/sw.js", 200),
    ("GET", "/no/such/page", 404),
    ("GET", "/healthz", 200),
]


def directives(csp: str) -> dict[str, str]:
    parts = (part.strip().split(" ", 1) for part in csp.split(";") if part.strip())
    return {part[0]: (part[1] if len(part) > 1 else "") for part in parts}


def assert_hardened(headers: CIMultiDictProxy[str], what: str) -> None:
    assert headers.get("X-Content-Type-Options") == "nosniff", what
    assert headers.get("Referrer-Policy") == "no-referrer", what
    assert headers.get("X-Frame-Options") == "DENY", what
    csp = directives(headers.get("Content-Security-Policy", ""))
    assert csp.get("frame-ancestors") == "'none'", what
    assert csp.get("object-src") == "'none'", what
    assert csp.get("base-uri") == "'none'", what
    assert csp.get("default-src") in ("'none'", "'self'"), what
    assert headers.get("Server") == "vvserver", what  # no aiohttp/Python versions


async def answer(client: Client, method: str, path: str) -> ClientResponse:
    response = await client.request(method, path)
    await response.read()
    return response


async def test_every_kind_of_answer_carries_the_security_headers(client: Client) -> None:
    for method, path, status in ANSWERS:
        response = await answer(client, method, path)
        assert response.status == status, (path, await response.text())
        assert_hardened(response.headers, f"{method} {path}")
        assert "Strict-Transport-Security" not in response.headers  # plain http: no HSTS


async def test_behind_tls_every_answer_asks_for_https_for_a_year(tls_client: Client) -> None:
    for method, path, status in ANSWERS:
        response = await answer(tls_client, method, path)
        assert response.status == status, path
        hsts = HSTS.fullmatch(response.headers.get("Strict-Transport-Security", ""))
        assert hsts is not None, path
        assert int(hsts.group(1)) >= ONE_YEAR_S


async def test_json_and_user_files_cannot_run_as_pages(client: Client, world: World) -> None:
    for path in ("/api/me", "/api/openapi.json"):
        csp = directives((await answer(client, "GET", path)).headers["Content-Security-Policy"])
        assert csp["default-src"] == "'none'"
        assert "sandbox" in csp
    admin = await ApiUser.sign_in(client, world.emails["admin_a"])
    response = await admin.get("/api/facilities")
    assert response.headers["Cache-Control"] == "no-store"
    assert "sandbox" in directives(response.headers["Content-Security-Policy"])


async def test_pages_and_their_service_worker_connect_to_their_own_origin_only(
    client: Client,
) -> None:
    for path in ("/signin", "/officer/", "/join/some-token", "/sw.js"):
        response = await answer(client, "GET", path)
        assert response.status == 200, path
        csp = directives(response.headers["Content-Security-Policy"])
        # 'self' covers this origin's ws:/wss: sockets; no other host may be reached.
        assert csp["connect-src"] == "'self'", path
        assert csp["script-src"] == "'self'", path


async def test_the_answer_aiohttp_writes_itself_for_a_broken_request_is_hardened_too(
    served: Served,
) -> None:
    reply = await served.exchange(
        b"GET /api/me HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 10_000 + b"\r\n\r\n"
    )
    head = reply.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    status_line, *lines = head.split("\r\n")
    assert " 400 " in status_line
    pairs = [tuple(line.split(": ", 1)) for line in lines]
    headers = CIMultiDictProxy(CIMultiDict[str]((name, value) for name, value in pairs))
    assert_hardened(headers, "aiohttp's own 400")


def test_the_deployment_guide_proxies_send_hsts_and_hide_versions() -> None:
    guide = (ROOT / "docs" / "deployment.md").read_text()
    caddy = guide.split("visits.example-county.gov {", 1)[1].split("```", 1)[0]
    nginx = guide.split("server {", 1)[1].split("```", 1)[0]
    for block in (caddy, nginx):
        assert re.search(r"Strict-Transport-Security.*max-age=31536000; includeSubDomains", block)
    assert "server_tokens off" in nginx
