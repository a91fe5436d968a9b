"""Security test fixtures: the app behind TLS, the app served by vvserver's own runner, and the
signaling fixtures (the app with its sockets and a media stand-in)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.conftest import AiohttpClient, fast_passwords, make_settings
from tests.signaling.conftest import media, ws_client
from vvserver.app import build_services, create_app
from vvserver.serving import AppRunner
from vvserver.settings import Settings

Client = TestClient[web.Request, web.Application]

__all__ = ["media", "ws_client"]


@pytest.fixture
async def tls_client(aiohttp_client: AiohttpClient, tmp_path: Path, sqlite_url: str) -> Client:
    """The app as deployed behind a TLS-terminating proxy (``VV_BEHIND_TLS=true``)."""
    settings = make_settings(tmp_path / "tls-data", sqlite_url, behind_tls=True)
    services = build_services(settings, passwords=fast_passwords())
    return await aiohttp_client(create_app(settings, services=services, workers=[]))


@dataclass
class Served:
    host: str
    port: int

    async def exchange(self, raw_request: bytes) -> bytes:
        """Send raw bytes on a new connection; everything the server answers before closing."""
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            writer.write(raw_request)
            await writer.drain()
            return await asyncio.wait_for(reader.read(), timeout=10)
        finally:
            writer.close()
            await writer.wait_closed()


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[Served]:
    """The app on a real port, run the way ``vvserver serve`` runs it (its own runner)."""
    services = build_services(settings, passwords=fast_passwords())
    runner = AppRunner(create_app(settings, services=services, workers=[]))
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        [address] = runner.addresses
        yield Served("127.0.0.1", address[1])
    finally:
        await runner.cleanup()
