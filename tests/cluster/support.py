"""What the cluster stories share: a world in PostgreSQL, participants, officers' boards."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import fast_passwords, make_settings
from tests.factories import PASSWORD, World, build_world
from vvserver.app import build_services
from vvserver.client.headless import HeadlessParticipant
from vvserver.domain.services import Services


async def world_in(database_url: str, data_dir: Path) -> tuple[Services, World]:
    """The test's own view of the cluster's database (no Redis: it only writes and reads)."""
    services = build_services(make_settings(data_dir, database_url), passwords=fast_passwords())
    return services, await build_world(services)


def video_frames(participant: HeadlessParticipant) -> int:
    """Video frames received on the participant's current peer connection."""
    peer = participant.peer
    if peer is None:
        return 0
    return sum(m.frames for m in peer.received if m is not None and m.kind == "video")


async def until(check: Any, within: float, what: str) -> None:
    try:
        async with asyncio.timeout(within):
            while not check():  # noqa: ASYNC110 - polls another process's effects
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"not within {within} s: {what}") from None


async def sign_in(base_url: str, email: str, password: str = PASSWORD) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{base_url}/api/auth/login", json={"email": email, "password": password}) as r,
    ):
        assert r.status == 200, await r.text()
        return str(r.cookies["vv_session"].value)


@dataclass
class Board:
    """An officer's live board on one node, kept up to date from its socket."""

    ws: aiohttp.ClientWebSocketResponse
    rows: dict[int, dict[str, Any]] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)

    async def pump(self) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                return
            message = json.loads(msg.data)
            self.messages.append(message)
            if message["type"] == "live_snapshot":
                self.rows = {row["id"]: row for row in message["visits"]}
            elif message["type"] == "live_update":
                for row in message["changed"]:
                    self.rows[row["id"]] = row
                for visit_id in message["removed"]:
                    self.rows.pop(visit_id, None)

    def seen(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == kind]


@asynccontextmanager
async def officer_board(base_url: str, cookie: str) -> AsyncIterator[Board]:
    ws_url = base_url.replace("http://", "ws://") + "/ws/officer"
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(ws_url, headers={"Cookie": f"vv_session={cookie}"}) as ws,
    ):
        board = Board(ws)
        task = asyncio.create_task(board.pump())
        try:
            yield board
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
