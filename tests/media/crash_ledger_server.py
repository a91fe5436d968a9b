"""A media server process for the SIGKILL ledger test: the real `VisitMedia` on a SQLite file,
with a tiny HTTP front instead of the WebSocket signaling (offers in, answers out).

Usage: python -m tests.media.crash_ledger_server DATA_DIR DATABASE_URL OFFICER_JSON
At start it runs the start-up reconciliation, as `vvserver serve` does, then prints
"ready PORT". Each media flow change of a room prints "flow ROLE true|false ISO-TIME".
`POST /join/{visit_id}/{role}` (body: the offer) answers; `POST /end/{visit_id}` terminates
the visit as the officer and waits until its end is in the database.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import get_args

from aiohttp import web

from tests.conftest import fast_passwords, make_settings
from vvserver.app import build_services
from vvserver.domain.accounts.principal import Principal
from vvserver.domain.visits.reconcile import reconcile_at_startup
from vvserver.media.aiortc_hooks import set_ice_host_addresses
from vvserver.media.room_events import MediaFlowChanged, Role
from vvserver.media.room_registry import RoomRegistry
from vvserver.visits_live import VisitMedia


async def run(data_dir: Path, database_url: str, officer: Principal) -> None:
    set_ice_host_addresses(["127.0.0.1"])
    services = build_services(make_settings(data_dir, database_url), passwords=fast_passwords())
    report = await reconcile_at_startup(services)
    print(f"reconciled {report}", flush=True)
    media = VisitMedia(services, RoomRegistry(), quality_interval=None)
    followed: set[int] = set()

    async def print_flow(visit_id: int) -> None:
        room = media.rooms.get(visit_id)
        if room is None:
            return
        async for event in room.events():
            if isinstance(event, MediaFlowChanged):
                flowing = "true" if event.flowing else "false"
                print(f"flow {event.role} {flowing} {event.at.isoformat()}", flush=True)

    async def join(request: web.Request) -> web.Response:
        visit_id, role = int(request.match_info["visit_id"]), request.match_info["role"]
        if role not in get_args(Role):
            raise web.HTTPNotFound()
        answer = await media.join(visit_id, role, await request.text())  # type: ignore[arg-type]
        if visit_id not in followed:
            followed.add(visit_id)
            asyncio.create_task(print_flow(visit_id))  # noqa: RUF006 (lives with the process)
        return web.Response(text=answer)

    async def end(request: web.Request) -> web.Response:
        visit_id = int(request.match_info["visit_id"])
        await media.terminate(visit_id, officer, "end of the crash test")
        await media.wait_settled(visit_id)
        return web.Response(text="ended")

    app = web.Application()
    app.router.add_post("/join/{visit_id}/{role}", join)
    app.router.add_post("/end/{visit_id}", end)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert isinstance(server, asyncio.base_events.Server)
    print(f"ready {server.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.sleep(3600)


if __name__ == "__main__":
    fields = json.loads(sys.argv[3])
    asyncio.run(run(Path(sys.argv[1]), sys.argv[2], Principal(**fields)))
