"""Lost time per side, as the officer sees it during the call and the family after it: the
visitor's network goes away for six seconds (the fault relay on its path) while its
connection still looks fine."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from aiohttp import ClientWebSocketResponse

from tests.factories import ApiUser, World, add_visit
from tests.media.fault_relay import FaultRelay
from tests.signaling.conftest import Client, join_link, receive_until
from tests.signaling.test_full_visit import (
    clip,
    join_by_socket,
    live_client,
    loopback_ice,
    row_until,
)
from vvserver.client.peer import TestPeer
from vvserver.client.sample_clip import Clip
from vvserver.domain.services import Services
from vvserver.media.aiortc_hooks import set_ice_host_addresses

pytestmark = pytest.mark.slow
__all__ = ["clip", "live_client", "loopback_ice"]  # fixtures shared with the full-visit test

OUTAGE_S = 6.0


async def join_through(relay: FaultRelay, ws: ClientWebSocketResponse, peer: TestPeer) -> None:
    offer = relay.rewrite_offer(await peer.create_offer())
    await ws.send_json({"type": "offer", "v": 1, "sdp": offer})
    await peer.accept_answer(relay.rewrite_answer((await receive_until(ws, "answer"))["sdp"]))


async def test_the_officer_sees_a_side_losing_time_and_the_family_gets_the_figure_after(
    live_client: Client, services: Services, world: World, clip: Clip
) -> None:
    loop = asyncio.get_running_loop()
    # The test reads none of its sockets while it sleeps through the outage: with the default
    # 2-s heartbeat the server would (rightly) drop them as dead meanwhile.
    services.settings = services.settings.model_copy(update={"signaling_heartbeat_s": 30.0})
    set_ice_host_addresses(["127.0.0.1"])  # the app's start-up set the settings' (none)
    visit_id = await add_visit(services, world, ends_in=120.0, started=timedelta(seconds=1))
    token = await join_link(services, visit_id)
    officer = await ApiUser.sign_in(live_client, world.emails["officer_a"])
    officer_cookie = {"Cookie": f"vv_session={officer.cookies['vv_session']}"}
    kiosk_auth = {"Authorization": f"Bearer {world.kiosk_tokens['a1-1']}"}
    kiosk_peer, visitor_peer = TestPeer("kiosk", clip), TestPeer("visitor", clip)
    relay = await FaultRelay.open()
    try:
        async with (
            live_client.ws_connect("/ws/officer", headers=officer_cookie) as live,
            live_client.ws_connect("/ws/kiosk", headers=kiosk_auth) as kiosk,
            live_client.ws_connect(f"/ws/visitor?token={token}") as visitor,
        ):
            await receive_until(live, "live_snapshot")
            await receive_until(kiosk, "schedule")
            await join_by_socket(kiosk, kiosk_peer, visit_id=visit_id)
            await join_through(relay, visitor, visitor_peer)
            await kiosk_peer.received_media("video").wait_for_frames(30, within=10)
            await row_until(live, visit_id, lambda r: r["state"] == "live")

            relay.block()  # the visitor's network is gone; ICE will not notice for ~30 s
            blocked_at = loop.time()
            losing = await row_until(
                live, visit_id, lambda r: r["visitor_losing"] and r["visitor_lost_seconds"] >= 2
            )
            seen_after = loop.time() - blocked_at
            await asyncio.sleep(OUTAGE_S - (loop.time() - blocked_at))
            relay.unblock()
            outage = loop.time() - blocked_at
            back = await row_until(live, visit_id, lambda r: not r["visitor_losing"])

            await live.send_json(
                {"type": "terminate", "v": 1, "visit_id": visit_id, "reason": "end of the test"}
            )
            await receive_until(visitor, "visit_ended")
    finally:
        relay.close()
        await kiosk_peer.close()
        await visitor_peer.close()

    family = await ApiUser.sign_in(live_client, world.emails["visitor"])
    shown = await (await family.get(f"/api/visits/{visit_id}")).json()
    print(
        f"\noutage {outage:.2f} s; the officer saw the visitor losing {seen_after:.1f} s into it "
        f"({losing['visitor_lost_seconds']} s so far, kiosk {losing['kiosk_lost_seconds']} s); "
        f"the family sees visitor {shown['visitor_lost_seconds']} s, kiosk "
        f"{shown['kiosk_lost_seconds']} s, {shown['lost_seconds']} s in all"
    )
    assert not losing["kiosk_losing"]
    assert losing["kiosk_lost_seconds"] == 0
    assert back["visitor_lost_seconds"] >= 2
    assert abs(shown["visitor_lost_seconds"] - outage) <= 1.0
    assert shown["kiosk_lost_seconds"] == 0
    assert shown["lost_seconds"] == shown["visitor_lost_seconds"]
