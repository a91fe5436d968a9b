"""Lost time survives a SIGKILL of the media server: the seconds since the ledger's last write,
the downtime and the time until each side's media returns are all counted."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from tests.factories import World, add_visit
from tests.media.visit_media_support import get_visit
from vvserver.client.peer import TestPeer
from vvserver.client.sample_clip import Clip
from vvserver.domain.services import Services
from vvserver.media.room_events import Role
from vvserver.settings import Settings
from vvserver.visits_live.ledger_store import LEDGER_PERSIST_S

pytestmark = pytest.mark.slow
REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ServerProcess:
    """`tests.media.crash_ledger_server` in a child process; its flow lines as they come."""

    child: asyncio.subprocess.Process
    port: int
    flows: list[tuple[Role, bool, datetime]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def read_lines(self) -> None:
        assert self.child.stdout is not None
        while line := (await self.child.stdout.readline()).decode().split():
            if line[0] == "flow":
                self.flows.append((line[1], line[2] == "true", datetime.fromisoformat(line[3])))  # type: ignore[arg-type]
                self.changed.set()

    async def flow(self, role: Role, flowing: bool, within: float = 15.0) -> datetime:
        """When `role`'s media started (or stopped), as the server dated it."""
        async with asyncio.timeout(within):
            while True:
                for seen_role, seen_flowing, at in self.flows:
                    if (seen_role, seen_flowing) == (role, flowing):
                        return at
                self.changed.clear()
                await self.changed.wait()


@contextlib.asynccontextmanager
async def server_process(settings: Settings, world: World) -> AsyncIterator[ServerProcess]:
    officer = {
        "role": "officer",
        "account_id": world.accounts["officer_a"],
        "agency_id": world.agency_id,
        "facility_id": world.facility_a,
    }
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.media.crash_ledger_server",
        str(settings.data_dir),
        str(settings.database_url),
        json.dumps(officer),
        stdout=asyncio.subprocess.PIPE,
        cwd=REPOSITORY_ROOT,
    )
    assert child.stdout is not None
    reader: asyncio.Task[None] | None = None
    try:
        async with asyncio.timeout(60):
            while not (line := (await child.stdout.readline()).decode()).startswith("ready"):
                assert line, "the server process died"
        server = ServerProcess(child, int(line.split()[1]))
        reader = asyncio.create_task(server.read_lines())
        yield server
    finally:
        if child.returncode is None:
            child.kill()
        await child.wait()
        if reader is not None:
            await reader


async def join(server: ServerProcess, visit_id: int, role: Role, peer: TestPeer) -> None:
    async def answer(offer: str) -> str:
        async with aiohttp.ClientSession() as http:
            response = await http.post(f"{server.url}/join/{visit_id}/{role}", data=offer)
            assert response.status == 200, await response.text()
            return await response.text()

    await peer.connect(answer)


async def test_lost_seconds_survive_a_sigkill_of_the_server(
    settings: Settings, services: Services, world: World, clip: Clip
) -> None:
    visit_id = await add_visit(services, world, ends_in=300.0)
    peers = [TestPeer(name, clip) for name in ("visitor", "kiosk", "visitor-2", "kiosk-2")]
    visitor, kiosk, visitor_again, kiosk_again = peers
    try:
        async with server_process(settings, world) as first:
            await asyncio.gather(
                join(first, visit_id, "visitor", visitor), join(first, visit_id, "kiosk", kiosk)
            )
            await first.flow("visitor", True)
            await kiosk.received_media("video").wait_for_frames(30, within=10)
            for track in (visitor.sent_track("audio"), visitor.sent_track("video")):
                track.paused = True  # the visitor's media stops: it starts losing time
            visitor_stopped = await first.flow("visitor", False)
            await asyncio.sleep(1.5)  # ... and the ledger is written while it loses
            first.child.send_signal(signal.SIGKILL)
            killed = datetime.now(UTC)
        await first.child.wait()
        assert first.child.returncode == -signal.SIGKILL
        await asyncio.sleep(1.0)  # the server is down

        async with server_process(settings, world) as second:  # reconciles at start
            restarted = await get_visit(services, visit_id)
            await asyncio.gather(
                join(second, visit_id, "visitor", visitor_again),
                join(second, visit_id, "kiosk", kiosk_again),
            )
            visitor_back = await second.flow("visitor", True)
            kiosk_back = await second.flow("kiosk", True)
            await kiosk_again.received_media("video").wait_for_frames(30, within=10)
            async with aiohttp.ClientSession() as http:
                response = await http.post(f"{second.url}/end/{visit_id}")
                assert response.status == 200, await response.text()
    finally:
        for peer in peers:
            await peer.close()

    visit = await get_visit(services, visit_id)
    visitor_truth = (visitor_back - visitor_stopped).total_seconds()
    kiosk_truth = (kiosk_back - killed).total_seconds()
    print(
        f"\nvisitor: silent {visitor_truth:.2f} s (killed, down, back), "
        f"lost {visit.visitor_lost_s:.2f} s; kiosk: {kiosk_truth:.2f} s from the kill to its "
        f"media's return, lost {visit.kiosk_lost_s:.2f} s; after the restart "
        f"{restarted.visitor_lost_s:.2f} / {restarted.kiosk_lost_s:.2f} s"
    )
    assert visit.state == "terminated"
    # The visitor's open loss was in the row (its start, the sides in the call): exact.
    assert abs(visit.visitor_lost_s - visitor_truth) <= 1.0
    # The kiosk loses from the ledger's last write before the kill: at most a second early.
    assert kiosk_truth - 0.5 <= visit.kiosk_lost_s <= kiosk_truth + LEDGER_PERSIST_S + 1.0
    # The downtime was counted at the restart already (and shown at once).
    assert restarted.state == "ready"
    assert restarted.kiosk_lost_s >= 1.0
    assert visit.ledger_at is None
