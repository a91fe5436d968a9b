"""A real vvserver on 127.0.0.1 in a background thread, for synchronous clients (schemathesis)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.conftest import fast_passwords, make_settings
from tests.factories import World, build_world
from vvserver.app import build_services, create_app
from vvserver.db.migrate import upgrade
from vvserver.serving import AppRunner


class LiveServer:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.base_url = ""
        self.world: World | None = None
        self._runner: web.AppRunner | None = None

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def start(self, prepare: Callable[[World], Coroutine[Any, Any, None]] | None = None) -> None:
        self.thread.start()
        self.run(self._start(prepare))

    async def _start(self, prepare: Callable[[World], Coroutine[Any, Any, None]] | None) -> None:
        url = f"sqlite+aiosqlite:///{self.data_dir / 'vv.sqlite3'}"
        await upgrade(url)
        settings = make_settings(self.data_dir, url)
        services = build_services(settings, passwords=fast_passwords())
        self.world = await build_world(services)
        if prepare is not None:
            await prepare(self.world)
        self._runner = AppRunner(create_app(settings, services=services, workers=[]))
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        port = server.sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        if self._runner is not None:
            self.run(self._runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()
