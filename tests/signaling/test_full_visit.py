"""A whole visit through the public protocol, with the real media service and aiortc peers
over 127.0.0.1: the kiosk is told to start, both sides join by WebSocket, the officer sees the
call go live, watches it and ends it; both sides are told why."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse

from tests.conftest import AiohttpClient
from tests.factories import ApiUser, World
from tests.factories import add_visit as add_short_visit
from tests.media.visit_media_support import MONITOR_SECTIONS
from tests.signaling.conftest import (
    Client,
    join_link,
    receive_until,
    start_event,
    visit_with_link,
)
from vvserver.app import create_app
from vvserver.app_keys import HUB, VISIT_MEDIA
from vvserver.client.peer import TestPeer
from vvserver.client.sample_clip import Clip, load_clip
from vvserver.db.models import Visit
from vvserver.domain.services import Services
from vvserver.media.aiortc_hooks import set_ice_host_addresses
from vvserver.media.room_registry import RoomRegistry
from vvserver.settings import Settings
from vvserver.visits_live import VisitMedia

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def loopback_ice() -> Iterator[None]:
    set_ice_host_addresses(["127.0.0.1"])
    yield
    set_ice_host_addresses(None)


@pytest.fixture(scope="module")
def clip() -> Clip:
    return load_clip()


@pytest.fixture
async def live_client(
    aiohttp_client: AiohttpClient, settings: Settings, services: Services
) -> AsyncIterator[Client]:
    app = create_app(settings, services=services, workers=[])
    visit_media = VisitMedia(services, RoomRegistry(), quality_interval=1.0)
    app[VISIT_MEDIA] = visit_media  # quality every second instead of every five
    app[HUB].media = visit_media
    yield await aiohttp_client(app)
    await visit_media.close()


async def join_by_socket(ws: ClientWebSocketResponse, peer: TestPeer, **extra: Any) -> None:
    await ws.send_json({"type": "offer", "v": 1, "sdp": await peer.create_offer(), **extra})
    await peer.accept_answer((await receive_until(ws, "answer"))["sdp"])


async def row_until(
    live: ClientWebSocketResponse, visit_id: int, wanted: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The next live-list row of this visit that is as wanted."""
    async with asyncio.timeout(15):
        while True:
            update = await receive_until(live, "live_update")
            for row in update["changed"]:
                if row["id"] == visit_id and wanted(row):
                    return dict(row)


async def test_a_visit_from_the_kiosks_start_to_the_officers_termination(
    live_client: Client, services: Services, world: World, clip: Clip
) -> None:
    visit_id, token = await visit_with_link(services, world, starts_in=timedelta(minutes=-1))
    officer = await ApiUser.sign_in(live_client, world.emails["officer_a"])
    officer_cookie = {"Cookie": f"vv_session={officer.cookies['vv_session']}"}
    kiosk_auth = {"Authorization": f"Bearer {world.kiosk_tokens['a1-1']}"}
    visitor_peer, kiosk_peer = TestPeer("visitor", clip), TestPeer("kiosk", clip)
    monitor_peer = TestPeer("monitor", None, sections=MONITOR_SECTIONS)
    try:
        async with (
            live_client.ws_connect("/ws/officer", headers=officer_cookie) as live,
            live_client.ws_connect("/ws/kiosk", headers=kiosk_auth) as kiosk,
            live_client.ws_connect(f"/ws/visitor?token={token}") as visitor,
        ):
            await receive_until(live, "live_snapshot")
            await receive_until(kiosk, "schedule")
            await receive_until(visitor, "visit_status")

            services.events.publish(await start_event(services, visit_id))
            start = await receive_until(kiosk, "visit_start")
            await join_by_socket(kiosk, kiosk_peer, visit_id=start["visit_id"])
            await join_by_socket(visitor, visitor_peer)
            await visitor_peer.wait_connected()
            await kiosk_peer.wait_connected()
            await visitor_peer.received_media("video").wait_for_frames(10, within=10)
            await kiosk_peer.received_media("video").wait_for_frames(10, within=10)

            row = await row_until(
                live,
                visit_id,
                lambda r: (
                    (r["state"], r["visitor_media"], r["kiosk_media"])
                    == ("live", "connected", "connected")
                ),
            )
            assert row["kiosk_online"] is True
            assert row["visitor_connected"] is True
            assert row["kiosk_connected"] is True
            row = await row_until(
                live, visit_id, lambda r: bool(r["visitor_quality"] and r["kiosk_quality"])
            )
            assert row["visitor_quality"]["bitrate_in_bps"] > 0
            assert row["kiosk_quality"]["video_fps_in"] > 0

            await live.send_json(
                {
                    "type": "monitor",
                    "v": 1,
                    "visit_id": visit_id,
                    "sdp": await monitor_peer.create_offer(),
                }
            )
            await monitor_peer.accept_answer((await receive_until(live, "answer"))["sdp"])
            await monitor_peer.wait_connected()
            await monitor_peer.received_media("video", 0).wait_for_frames(5, within=10)

            await live.send_json(
                {"type": "terminate", "v": 1, "visit_id": visit_id, "reason": "threats"}
            )
            assert (await receive_until(live, "ok"))["ref"] == "terminate"
            for sock in (visitor, kiosk):
                ended = await receive_until(sock, "visit_ended")
                assert (ended["reason"], ended["message"]) == (
                    "terminated",
                    "ended by the facility",
                )
            for peer in (visitor_peer, kiosk_peer):
                await peer.wait_for_state({"closed", "failed"}, within=5)
    finally:
        for peer in (visitor_peer, kiosk_peer, monitor_peer):
            await peer.close()


async def test_a_visitor_who_drops_out_rejoins_the_same_visit_and_its_clock(
    live_client: Client, services: Services, world: World, clip: Clip
) -> None:
    visit_id = await add_short_visit(services, world, ends_in=7.0, started=timedelta(seconds=1))
    token = await join_link(services, visit_id)
    async with services.read() as s:
        end_at = (await s.get(Visit, visit_id)).end_at  # type: ignore[union-attr]
    kiosk_auth = {"Authorization": f"Bearer {world.kiosk_tokens['a1-1']}"}
    kiosk_peer, first, second = (
        TestPeer("kiosk", clip),
        TestPeer("visitor", clip),
        TestPeer("visitor-again", clip),
    )
    try:
        async with live_client.ws_connect("/ws/kiosk", headers=kiosk_auth) as kiosk:
            await receive_until(kiosk, "schedule")
            await join_by_socket(kiosk, kiosk_peer, visit_id=visit_id)
            async with live_client.ws_connect(f"/ws/visitor?token={token}") as visitor:
                await join_by_socket(visitor, first)
                await first.wait_connected()
            await first.close()  # the visitor's network drops: socket and peer connection gone
            gone = await receive_until(kiosk, "participant")
            while gone["state"] != "disconnected":
                gone = await receive_until(kiosk, "participant")
            assert gone["role"] == "visitor"
            await asyncio.sleep(0.5)
            async with services.read() as s:
                assert (await s.get(Visit, visit_id)).state == "live"  # type: ignore[union-attr]

            async with live_client.ws_connect(f"/ws/visitor?token={token}") as visitor:
                status = await receive_until(visitor, "visit_status")
                assert status["end_at"].replace("Z", "+00:00") == end_at.isoformat()
                await join_by_socket(visitor, second)
                await second.wait_connected()
                await kiosk_peer.received_media("video").wait_for_keyframes(1, within=5)
                # Both read at once: a socket left unread answers no pings and is dropped.
                for ended in await asyncio.gather(
                    *(receive_until(sock, "visit_ended") for sock in (visitor, kiosk))
                ):
                    assert ended["reason"] == "time_up"
    finally:
        for peer in (kiosk_peer, first, second):
            await peer.close()
    async with asyncio.timeout(10):
        while True:
            async with services.read() as s:
                visit = await s.get(Visit, visit_id)
                assert visit is not None
            if visit.state == "completed":
                break
            await asyncio.sleep(0.1)
    assert visit.visitor_lost_s >= 0.5
    assert visit.kiosk_lost_s == 0.0


async def test_a_dropped_socket_alone_does_not_end_a_working_call(
    live_client: Client, services: Services, world: World, clip: Clip
) -> None:
    visit_id = await add_short_visit(services, world, ends_in=30.0, started=timedelta(seconds=1))
    token = await join_link(services, visit_id)
    kiosk_auth = {"Authorization": f"Bearer {world.kiosk_tokens['a1-1']}"}
    kiosk_peer, visitor_peer = TestPeer("kiosk", clip), TestPeer("visitor", clip)
    try:
        async with live_client.ws_connect("/ws/kiosk", headers=kiosk_auth) as kiosk:
            await receive_until(kiosk, "schedule")
            await join_by_socket(kiosk, kiosk_peer, visit_id=visit_id)
            async with live_client.ws_connect(f"/ws/visitor?token={token}") as visitor:
                await join_by_socket(visitor, visitor_peer)
                await visitor_peer.wait_connected()
            # The visitor's socket is gone; its peer connection is not.
            received = kiosk_peer.received_media("video")
            before = received.frames
            await asyncio.sleep(1.5)
            assert received.frames - before >= 30  # still about 30 fps from the visitor
            assert visitor_peer.pc.connectionState == "connected"
            async with services.read() as s:
                assert (await s.get(Visit, visit_id)).state == "live"  # type: ignore[union-attr]
    finally:
        for peer in (kiosk_peer, visitor_peer):
            await peer.close()


async def test_no_shows_end_the_call_for_whoever_waited(
    live_client: Client, services: Services, world: World, clip: Clip
) -> None:
    """The visitor never comes: no_show (counted). The kiosk never comes and was never online:
    failed, the facility's fault, credited. Either way the side that waited is told at once."""
    from vvserver.scheduling.loop import scheduler_pass

    started = timedelta(minutes=11)  # past the facility's 10-minute no-show wait
    no_visitor = await add_short_visit(services, world, ends_in=600.0, started=started)
    no_kiosk = await add_short_visit(
        services, world, ends_in=600.0, started=started, kiosk="a2-1", person="pa2"
    )
    token = await join_link(services, no_kiosk)
    kiosk_auth = {"Authorization": f"Bearer {world.kiosk_tokens['a1-1']}"}
    kiosk_peer, visitor_peer = TestPeer("kiosk", clip), TestPeer("visitor", clip)
    try:
        async with (
            live_client.ws_connect("/ws/kiosk", headers=kiosk_auth) as kiosk,
            live_client.ws_connect(f"/ws/visitor?token={token}") as visitor,
        ):
            await receive_until(kiosk, "schedule")
            await join_by_socket(kiosk, kiosk_peer, visit_id=no_visitor)
            await join_by_socket(visitor, visitor_peer)
            await visitor_peer.wait_connected()
            # The a2-1 kiosk has never been online; a1-1 is, through its socket.
            await scheduler_pass(services, services.clock.now(), services.events)
            for sock in (kiosk, visitor):
                await receive_until(sock, "visit_ended")
    finally:
        for peer in (kiosk_peer, visitor_peer):
            await peer.close()
    async with services.read() as s:
        missed = await s.get(Visit, no_visitor)
        failed = await s.get(Visit, no_kiosk)
    assert missed is not None
    assert failed is not None
    assert (missed.state, missed.missing_side, missed.counts_toward_limit) == (
        "no_show",
        "visitor",
        True,
    )
    assert (failed.state, failed.credit_flag, failed.counts_toward_limit) == ("failed", True, False)
