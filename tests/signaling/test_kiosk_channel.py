"""A kiosk keeps its socket open: its day's schedule, presence, and the start of each visit."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from aiohttp import WSCloseCode

from tests.factories import ApiUser, World
from tests.signaling.conftest import (
    VALID_OFFER,
    CallLog,
    Client,
    closed_with,
    receive,
    receive_until,
    start_event,
    still_answers,
    visit_with_link,
)
from vvserver.app_keys import HUB
from vvserver.db.models import Kiosk
from vvserver.domain.services import Services


def bearer(world: World, kiosk: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.kiosk_tokens[kiosk]}"}


async def test_kiosk_gets_its_schedule_is_online_and_starts_the_visit_on_time(
    ws_client: Client, services: Services, world: World, media: CallLog
) -> None:
    visit_id, _ = await visit_with_link(services, world, starts_in=timedelta(minutes=1))
    elsewhere, _ = await visit_with_link(services, world, kiosk="a1-2", visitor="visitor2")
    hub = ws_client.app[HUB]
    async with ws_client.ws_connect("/ws/kiosk", headers=bearer(world, "a1-1")) as kiosk:
        welcome = await receive(kiosk)
        assert welcome["role"] == "kiosk"
        assert welcome["heartbeat_s"] == services.settings.signaling_heartbeat_s
        assert welcome["media_sessions"] == []  # in no call yet
        schedule = await receive(kiosk)
        assert schedule["type"] == "schedule"
        assert schedule["kiosk_id"] == world.kiosks["a1-1"]
        assert schedule["timezone"] == "America/New_York"
        assert [v["id"] for v in schedule["visits"]] == [visit_id]
        assert schedule["visits"][0]["person_name"] == "PA1 Doe"
        assert schedule["visits"][0]["visitor_first_name"] == "Visitor"

        assert hub.kiosk_online(world.kiosks["a1-1"])
        assert not hub.kiosk_online(world.kiosks["a1-2"])
        async with services.read() as s:
            device = await s.get(Kiosk, world.kiosks["a1-1"])
            assert device is not None
            assert device.last_seen_at is not None
            assert services.clock.now() - device.last_seen_at < timedelta(seconds=30)

        services.events.publish(await start_event(services, elsewhere))  # not this kiosk's
        services.events.publish(await start_event(services, visit_id))
        start = await receive_until(kiosk, "visit_start")
        assert start["visit_id"] == visit_id

        await kiosk.send_json({"type": "offer", "v": 1, "visit_id": visit_id, "sdp": VALID_OFFER})
        assert (await receive(kiosk))["sdp"] == f"answer for kiosk of visit {visit_id}"
        assert hub.participant_connected(visit_id, "kiosk")

        # Another kiosk's visit does not exist for this kiosk; the socket goes on.
        await kiosk.send_json({"type": "offer", "v": 1, "visit_id": elsewhere, "sdp": VALID_OFFER})
        assert (await receive(kiosk))["code"] == "not_found"
        await kiosk.send_json({"type": "offer", "v": 1, "sdp": VALID_OFFER})
        assert (await receive(kiosk))["code"] == "visit_required"
        await kiosk.send_json({"type": "get_schedule", "v": 1})
        assert (await receive(kiosk))["type"] == "schedule"
        await still_answers(kiosk)
    assert media.joins == [(visit_id, "kiosk", VALID_OFFER)]
    await until(lambda: not hub.kiosk_online(world.kiosks["a1-1"]))
    assert not hub.participant_connected(visit_id, "kiosk")


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(250):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition never held")


async def test_the_visitor_waiting_is_told_when_the_slot_starts(
    ws_client: Client, services: Services, world: World
) -> None:
    visit_id, token = await visit_with_link(services, world, starts_in=timedelta(minutes=1))
    async with (
        ws_client.ws_connect("/ws/kiosk", headers=bearer(world, "a1-1")) as kiosk,
        ws_client.ws_connect(f"/ws/visitor?token={token}") as visitor,
    ):
        await receive_until(kiosk, "schedule")
        await receive(visitor)
        await receive(visitor)
        services.events.publish(await start_event(services, visit_id))
        status = await receive_until(visitor, "visit_status")
        assert status["visit_id"] == visit_id
        assert status["kiosk_online"] is True
        assert status["privileged"] is False  # a family visit: monitored and recorded


async def test_a_kiosk_can_authenticate_with_a_first_message(
    ws_client: Client, world: World
) -> None:
    async with ws_client.ws_connect("/ws/kiosk") as kiosk:
        await kiosk.send_json({"type": "auth", "v": 1, "token": world.kiosk_tokens["b1-1"]})
        assert (await receive(kiosk))["type"] == "welcome"
        assert (await receive(kiosk))["kiosk_id"] == world.kiosks["b1-1"]


async def test_wrong_device_tokens_close_with_1008(ws_client: Client, world: World) -> None:
    good = world.kiosk_tokens["a1-1"]
    kiosk_part, _, secret = good.partition(".")
    for header in (
        f"Bearer {kiosk_part}.{secret[::-1]}",
        f"Bearer k999999.{secret}",
        "Bearer nonsense",
        f"Basic {good}",
    ):
        async with ws_client.ws_connect("/ws/kiosk", headers={"Authorization": header}) as ws:
            code, seen = await closed_with(ws)
        assert code == WSCloseCode.POLICY_VIOLATION
        assert [(m["type"], m["code"]) for m in seen] == [("error", "invalid_device_token")]
    async with ws_client.ws_connect("/ws/kiosk") as ws:
        await ws.send_json({"type": "auth", "v": 1, "token": "k1.wrong"})
        code, seen = await closed_with(ws)
    assert code == WSCloseCode.POLICY_VIOLATION
    assert seen[0]["code"] == "invalid_device_token"


async def test_the_kiosk_list_says_which_kiosks_have_their_socket_open(
    ws_client: Client, world: World
) -> None:
    officer = await ApiUser.sign_in(ws_client, world.emails["officer_a"])
    path = f"/api/facilities/{world.facility_a}/kiosks"

    async def online() -> dict[int, bool]:
        response = await officer.get(path)
        assert response.status == 200
        return {kiosk["id"]: kiosk["online"] for kiosk in await response.json()}

    kiosk_id = world.kiosks["a1-1"]
    assert (await online())[kiosk_id] is False
    async with ws_client.ws_connect("/ws/kiosk", headers=bearer(world, "a1-1")) as kiosk:
        await receive_until(kiosk, "schedule")
        now = await online()
        assert now[kiosk_id] is True
        assert not any(state for other, state in now.items() if other != kiosk_id)
    for _ in range(50):  # the server notices the close a moment later
        if not (await online())[kiosk_id]:
            break
        await asyncio.sleep(0.05)
    assert (await online())[kiosk_id] is False
