"""Behind TLS the session cookie is ``__Host-vv_session`` (Secure, Path=/, no Domain), and
both edges, the API and the sockets, read that name (ASVS 3.3.3)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import WSCloseCode

from tests.conftest import AiohttpClient, fast_passwords, make_settings
from tests.factories import PASSWORD, build_world
from tests.signaling.conftest import closed_with, receive
from vvserver.app import build_services, create_app


async def test_behind_tls_the_cookie_has_the_host_prefix_and_both_edges_read_it(
    aiohttp_client: AiohttpClient, tmp_path: Path, sqlite_url: str
) -> None:
    settings = make_settings(tmp_path, sqlite_url, behind_tls=True)
    services = build_services(settings, passwords=fast_passwords())
    world = await build_world(services)
    client = await aiohttp_client(create_app(settings, services=services, workers=[]))

    resp = await client.post(
        "/api/auth/login", json={"email": world.emails["officer_a"], "password": PASSWORD}
    )
    assert resp.status == 200
    set_cookie = resp.headers["Set-Cookie"]
    assert set_cookie.startswith("__Host-vv_session=")
    assert "Secure" in set_cookie
    assert "Path=/" in set_cookie
    assert "Domain" not in set_cookie
    value = resp.cookies["__Host-vv_session"].value
    client.session.cookie_jar.clear()

    right = {"Cookie": f"__Host-vv_session={value}"}
    wrong = {"Cookie": f"vv_session={value}"}  # a cookie without the prefix is not the session
    assert (await client.get("/api/auth/session", headers=right)).status == 200
    assert (await client.get("/api/auth/session", headers=wrong)).status == 401
    async with client.ws_connect("/ws/officer", headers=right) as officer:
        assert (await receive(officer))["type"] == "welcome"
    async with client.ws_connect("/ws/officer", headers=wrong) as refused:
        code, seen = await closed_with(refused)
        assert (code, seen[-1]["code"]) == (WSCloseCode.POLICY_VIOLATION, "unauthenticated")

    csrf = (await (await client.get("/api/auth/session", headers=right)).json())["csrf_token"]
    resp = await client.post("/api/auth/logout", headers={**right, "X-CSRF-Token": csrf})
    assert resp.status == 204
    assert resp.headers["Set-Cookie"].startswith("__Host-vv_session=")
    assert "Secure" in resp.headers["Set-Cookie"]
    await services.db.close()


async def test_without_tls_the_cookie_keeps_its_plain_name(
    aiohttp_client: AiohttpClient, tmp_path: Path, sqlite_url: str
) -> None:
    settings = make_settings(tmp_path, sqlite_url)
    services = build_services(settings, passwords=fast_passwords())
    world = await build_world(services)
    client = await aiohttp_client(create_app(settings, services=services, workers=[]))
    resp = await client.post(
        "/api/auth/login", json={"email": world.emails["visitor"], "password": PASSWORD}
    )
    assert resp.headers["Set-Cookie"].startswith("vv_session=")
    assert "Secure" not in resp.headers["Set-Cookie"]
    await services.db.close()
