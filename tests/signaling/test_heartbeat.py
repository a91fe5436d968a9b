"""Every socket has a heartbeat: the server says it is there, and drops a peer gone silent.

A client that reconnects learns from ``welcome.media_sessions`` whether the server still holds
its media connection, and a kiosk that comes back within the start-up grace raises no alert.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from aiohttp import ClientWebSocketResponse, WSMsgType

from tests.factories import ApiUser, World
from tests.signaling.conftest import (
    VALID_OFFER,
    CallLog,
    Client,
    receive,
    receive_until,
    start_event,
    still_answers,
    visit_with_link,
)
from vvserver.app_keys import HUB
from vvserver.domain.services import Services

HEARTBEAT_S = 0.4


@pytest.fixture(autouse=True)
def quick_heartbeat(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services.settings, "signaling_heartbeat_s", HEARTBEAT_S)


async def until(condition: Callable[[], bool], within: float = 5.0) -> float:
    """Wait for the condition; the seconds it took."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < within, "condition never held"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def officer_headers(client: Client, world: World) -> dict[str, str]:
    user = await ApiUser.sign_in(client, world.emails["officer_a"])
    return {"Cookie": f"vv_session={user.cookies['vv_session']}"}


async def test_every_socket_hears_a_heartbeat_every_interval(
    ws_client: Client, services: Services, world: World
) -> None:
    _, token = await visit_with_link(services, world)
    kiosk_auth = {"Authorization": f"Bearer {world.kiosk_tokens['a1-1']}"}
    async with (
        ws_client.ws_connect(f"/ws/visitor?token={token}") as visitor,
        ws_client.ws_connect("/ws/kiosk", headers=kiosk_auth) as kiosk,
        ws_client.ws_connect(
            "/ws/officer", headers=await officer_headers(ws_client, world)
        ) as live,
    ):

        async def three_beats(ws: ClientWebSocketResponse) -> list[float]:
            welcome = (await ws.receive(timeout=5)).json()
            assert (welcome["type"], welcome["heartbeat_s"]) == ("welcome", HEARTBEAT_S)
            beats: list[float] = []
            while len(beats) < 3:
                message = (await ws.receive(timeout=5)).json()
                if message["type"] == "heartbeat":
                    assert message["v"] == 1
                    assert message["server_time"]
                    beats.append(time.monotonic())
            return beats

        # All three read at once: a socket nobody reads answers no pings (and is dropped).
        for beats in await asyncio.gather(*(three_beats(ws) for ws in (visitor, kiosk, live))):
            gaps = [later - earlier for earlier, later in itertools.pairwise(beats)]
            assert all(HEARTBEAT_S * 0.5 < gap < HEARTBEAT_S * 3 for gap in gaps), gaps


async def test_a_client_that_answers_nothing_is_dropped_after_three_silent_intervals(
    ws_client: Client, services: Services, world: World
) -> None:
    """A peer whose network went away answers neither messages nor pings: it is closed."""
    visit_id, token = await visit_with_link(services, world, starts_in=timedelta(minutes=-1))
    hub = ws_client.app[HUB]
    kiosk_id = world.kiosks["a1-1"]
    kiosk_auth = {"Authorization": f"Bearer {world.kiosk_tokens['a1-1']}"}
    # autoping=False and no reading: the client's side of a cut network.
    kiosk = await ws_client.ws_connect("/ws/kiosk", headers=kiosk_auth, autoping=False)
    visitor = await ws_client.ws_connect(f"/ws/visitor?token={token}", autoping=False)
    try:
        last_word = time.monotonic()  # nothing comes from either client after this offer
        await visitor.send_json({"type": "offer", "v": 1, "sdp": VALID_OFFER})
        await until(lambda: hub.kiosk_online(kiosk_id))
        await until(lambda: hub.participant_connected(visit_id, "visitor"))
        await until(
            lambda: (
                not hub.kiosk_online(kiosk_id)
                and not hub.participant_connected(visit_id, "visitor")
            )
        )
        gone_after = time.monotonic() - last_word
        # Dead after 3 intervals of silence; 2 intervals of slack for a busy test machine.
        assert HEARTBEAT_S * 3 * 0.95 <= gone_after < HEARTBEAT_S * 5, gone_after
    finally:
        await kiosk.close()
        await visitor.close()


async def test_a_quiet_client_that_answers_pings_stays_connected(
    ws_client: Client, services: Services, world: World
) -> None:
    """Browsers answer pings by themselves: a page that sends nothing is not dropped."""
    kiosk_auth = {"Authorization": f"Bearer {world.kiosk_tokens['a1-1']}"}
    async with ws_client.ws_connect("/ws/kiosk", headers=kiosk_auth) as kiosk:
        deadline = time.monotonic() + HEARTBEAT_S * 6
        heartbeats = 0
        while time.monotonic() < deadline:  # reading answers the pings (aiohttp's autoping)
            msg = await kiosk.receive(timeout=5)
            assert msg.type == WSMsgType.TEXT, msg
            heartbeats += msg.json()["type"] == "heartbeat"
        assert heartbeats >= 4
        await still_answers(kiosk)
        assert ws_client.app[HUB].kiosk_online(world.kiosks["a1-1"])


async def test_welcome_says_whether_the_server_still_holds_this_sides_media(
    ws_client: Client, services: Services, world: World, media: CallLog
) -> None:
    visit_id, token = await visit_with_link(services, world, starts_in=timedelta(minutes=-1))
    kiosk_auth = {"Authorization": f"Bearer {world.kiosk_tokens['a1-1']}"}
    async with ws_client.ws_connect(f"/ws/visitor?token={token}") as visitor:
        assert (await receive(visitor))["media_sessions"] == []
        await visitor.send_json({"type": "offer", "v": 1, "sdp": VALID_OFFER})
        await receive_until(visitor, "answer")
    # The socket dropped, the media connection stayed: the visitor keeps its peer connection.
    async with ws_client.ws_connect(f"/ws/visitor?token={token}") as visitor:
        assert (await receive(visitor))["media_sessions"] == [visit_id]
    async with ws_client.ws_connect("/ws/kiosk", headers=kiosk_auth) as kiosk:
        assert (await receive(kiosk))["media_sessions"] == []  # the kiosk never joined
        await kiosk.send_json({"type": "offer", "v": 1, "visit_id": visit_id, "sdp": VALID_OFFER})
        await receive_until(kiosk, "answer")
    async with ws_client.ws_connect("/ws/kiosk", headers=kiosk_auth) as kiosk:
        assert (await receive(kiosk))["media_sessions"] == [visit_id]
    # The relay dropped the visitor's connection (or the server restarted): re-offer at once.
    await media.leave(visit_id, "visitor")
    async with ws_client.ws_connect(f"/ws/visitor?token={token}") as visitor:
        assert (await receive(visitor))["media_sessions"] == []


async def test_a_kiosk_back_within_the_start_up_grace_raises_no_offline_alert(
    ws_client: Client, services: Services, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """After a restart the scheduler starts a visit again before its kiosk has reconnected."""
    monkey_grace = 1.5
    services.settings.kiosk_offline_grace_s = monkey_grace
    hub = ws_client.app[HUB]
    hub.started_at = time.monotonic()  # the server has just started
    back_in_time, _ = await visit_with_link(services, world, starts_in=timedelta(minutes=-1))
    stays_away, _ = await visit_with_link(
        services, world, starts_in=timedelta(minutes=-1), kiosk="a1-2", person="pa2"
    )
    kiosk_auth = {"Authorization": f"Bearer {world.kiosk_tokens['a1-1']}"}
    caplog.set_level(logging.INFO, logger="vvserver.signaling.hub")
    async with ws_client.ws_connect(
        "/ws/officer", headers=await officer_headers(ws_client, world)
    ) as live:
        await receive_until(live, "live_snapshot")
        services.events.publish(await start_event(services, back_in_time))
        services.events.publish(await start_event(services, stays_away))
        await asyncio.sleep(0.3)
        async with ws_client.ws_connect("/ws/kiosk", headers=kiosk_auth) as kiosk:
            schedule = await receive_until(kiosk, "schedule")
            assert [v["id"] for v in schedule["visits"]] == [back_in_time]  # it joins from here
            alert = await receive_until(live, "alert")  # after the grace, only the absent one
            waited = time.monotonic() - hub.started_at
            await asyncio.sleep(0.3)  # both graces are over
    assert (alert["code"], alert["visit_id"]) == ("kiosk_offline", stays_away)
    assert monkey_grace <= waited < monkey_grace + 2.0
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [f"visit {stays_away} starts but kiosk {world.kiosks['a1-2']} is offline"]
