"""Operators and load balancers ask /healthz; it says 503 when a part is dead."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate

from tests.conftest import AiohttpClient, fast_passwords, make_settings
from vvserver.app import build_services, create_app
from vvserver.domain.services import Services

Client = TestClient[web.Request, web.Application]


async def test_healthy_server_says_ok(client: Client) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert (await resp.json())["status"] == "ok"


async def test_a_dead_database_gives_503(aiohttp_client: AiohttpClient, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "postgresql+asyncpg://postgres@127.0.0.1:1/none")
    services = build_services(settings, passwords=fast_passwords())
    client = await aiohttp_client(create_app(settings, services=services, workers=[]))
    resp = await client.get("/healthz")
    assert resp.status == 503
    assert (await resp.json())["database"] == "down"


async def test_a_dead_background_worker_gives_503(
    aiohttp_client: AiohttpClient, tmp_path: Path, sqlite_url: str
) -> None:
    async def broken_worker(services: Services) -> None:
        raise RuntimeError("worker crashed")

    settings = make_settings(tmp_path, sqlite_url)
    services = build_services(settings, passwords=fast_passwords())
    app = create_app(settings, services=services, workers=[broken_worker])
    client = await aiohttp_client(app)
    await asyncio.sleep(0.05)
    resp = await client.get("/healthz")
    assert resp.status == 503
    assert (await resp.json())["workers"]["dead"] == [
        "test_a_dead_background_worker_gives_503.<locals>.broken_worker"
    ]


async def test_the_openapi_document_is_valid_3_1(client: Client) -> None:
    resp = await client.get("/api/openapi.json")
    spec = await resp.json()
    assert spec["openapi"] == "3.1.0"
    validate(spec)
    assert "/api/auth/login" in spec["paths"]


async def test_errors_are_json_with_a_code(client: Client) -> None:
    resp = await client.get("/api/nothing-here")
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "not_found"
    resp = await client.post(
        "/api/auth/login", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "malformed_json"
    resp = await client.post("/api/auth/login", json={"email": "a@b.c", "password": "x", "x": 1})
    assert resp.status == 422
    resp = await client.post(
        "/api/auth/login",
        data=b'{"email": "' + b"a" * 2_000_000 + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert resp.status == 413


async def test_the_pages_learn_the_installations_name(
    aiohttp_client: AiohttpClient, tmp_path: Path, sqlite_url: str
) -> None:
    default = await aiohttp_client(create_app(make_settings(tmp_path, sqlite_url), workers=[]))
    assert await (await default.get("/api/site")).json() == {"name": None}
    named_settings = make_settings(tmp_path, sqlite_url, site_name="Demo County Jail visits")
    named = await aiohttp_client(create_app(named_settings, workers=[]))
    assert await (await named.get("/api/site")).json() == {"name": "Demo County Jail visits"}
